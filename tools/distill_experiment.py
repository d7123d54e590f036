#!/usr/bin/env python3
"""The distillation experiment of README's Distillation section.

The teacher is the bundled translating model (models/default, 4 + 4 blocks; models/README.md). Each student
copies its encoder and part of its decoder (shrink-and-fine-tune: `--student-init teacher --student-layers
decoder=0,3` keeps the first and last of 4 decoder blocks) and trains for the same steps on the same pairs:

  (a) labels only        --alpha 1 (plain fine-tuning of the copied student);
  (b) word-level         the defaults, --alpha 0.2 --temperature 2 (Shleifer & Rush 2020);
  (c) sequence-level     --sequence-level --alpha 1: the teacher's 4-beam outputs replace the targets (Kim & Rush 2016).

Printed, as Markdown: each model's validation loss (against the data's references), and chrF and exact match
on the held-out test split of each task (greedy, as tools/default_model_eval.py scores the teacher), the
student before training too; then greedy decode speed of teacher and student from `t5 bench`.

    python3 tools/distill_experiment.py [--t5 .build/release/t5] [--teacher models/default]
        [--data /tmp/t5-default-model/data] [--work /tmp/distill-experiment] [--steps 1500]
        [--per-task 8000] [--student-layers decoder=0,3]

DATA is what tools/default_model_data.py writes (tools/make_default_model.sh's WORK/data). Students train on the
first --per-task pairs of each task's training split. Stages whose output exists are skipped.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from default_model_eval import TASKS, generate, score  # noqa: E402
from sacrebleu.metrics import CHRF  # noqa: E402


def run(cmd):
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def mean_chrf(results):
    return sum(r["chrF"] for r in results.values()) / len(results)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--t5", default=".build/release/t5")
    p.add_argument("--teacher", default="models/default")
    p.add_argument("--data", default="/tmp/t5-default-model/data")
    p.add_argument("--work", default="/tmp/distill-experiment")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--per-task", type=int, default=8000)
    p.add_argument("--student-layers", default="decoder=0,3")
    p.add_argument("--threads", default="2")
    a = p.parse_args()
    work, data = Path(a.work), Path(a.data)
    work.mkdir(parents=True, exist_ok=True)
    train, valid = [], []
    for name, prefix in TASKS:
        subset = work / f"{name}.train.jsonl"
        if not subset.exists():
            with open(data / f"{name}.train.jsonl") as f:
                subset.write_text("".join(line for _, line in zip(range(a.per_task), f)))
        train += ["--train", f"{prefix}={subset}"]
        valid += ["--valid", f"{prefix}={data / f'{name}.valid.jsonl'}"]
    common = ["--batch-size", "32", "--optimizer", "adafactor", "--lr", "1e-3", "--max-target-tokens", "64",
              "--eval-every", "100000", "--save-every", "500", "--threads", a.threads, "--seed", "1", "--json", "--quiet"]

    def cached(path, make):
        if path.exists():
            return json.loads(path.read_text())
        value = make()
        path.write_text(json.dumps(value))
        return value

    rows = []
    teacher_scores = cached(work / "teacher.scores.json", lambda: score(a.t5, a.teacher, str(data), threads=a.threads))
    rows.append(("teacher (4 + 4 blocks)", None, teacher_scores))
    variants = [
        ("(a) labels only (`--alpha 1`)", "labels", ["--alpha", "1"]),
        ("(b) word-level (`--alpha 0.2 --temperature 2`)", "word", []),
        ("(c) sequence-level (`--sequence-level --alpha 1`, 4 beams)", "sequence", ["--sequence-level", "--alpha", "1"]),
    ]
    init = None
    for label, name, flags in variants:
        out = work / name
        summary = work / f"{name}.summary.json"
        if not summary.exists():
            resume = ["--resume"] if out.exists() else []
            s = run([a.t5, "distill", "--teacher", a.teacher, "--student-init", "teacher", "--student-layers", a.student_layers,
                     "--out", str(out), *resume, "--steps", str(a.steps), *train, *valid, *common, *flags])
            summary.write_text(json.dumps(s))
        if init is None:
            init = out / "student-init"
            init_scores = cached(work / "init.scores.json", lambda: score(a.t5, str(init), str(data), threads=a.threads))
            rows.append((f"student as copied (`--student-layers {a.student_layers}`), untrained", None, init_scores))
        scores = cached(work / f"{name}.scores.json", lambda: score(a.t5, str(out), str(data), threads=a.threads))
        rows.append((label, json.loads(summary.read_text()), scores))

    # How closely each student follows the teacher (chrF of its outputs against the teacher's on the same test
    # inputs): distillation's own target, as against the references' (Apertium's), which the scores above use.
    def outputs(model, name):
        return cached(work / f"{name}.outputs.json", lambda: {
            task: generate(a.t5, model, [prefix + json.loads(line)["input"] for line in open(data / f"{task}.test.jsonl")], a.threads)
            for task, prefix in TASKS})
    teacher_outputs = outputs(a.teacher, "teacher")
    agreement = {}
    for label, name in [(rows[1][0], "init")] + [(label, name) for label, name, _ in variants]:
        model = str(work / "labels" / "student-init") if name == "init" else str(work / name)
        student = outputs(model, name)
        agreement[label] = {task: CHRF().corpus_score(student[task], [teacher_outputs[task]]).score for task, _ in TASKS}

    names = [n for n, _ in TASKS]
    print("| model | validation loss | " + " | ".join(f"{n} chrF / exact" for n in names)
          + " | mean chrF | of the teacher's | chrF against the teacher's outputs (" + " / ".join(names) + ") |")
    print("|---|---|" + "---|" * len(names) + "---|---|---|")
    for label, summary, results in rows:
        loss = f"{summary['eval_loss']:.3f}" if summary else "—"
        cells = " | ".join(f"{results[n]['chrF']:.1f} / {results[n]['exact_match']:.1f}%" for n in names)
        agree = " / ".join(f"{agreement[label][n]:.1f}" for n in names) if label in agreement else "—"
        print(f"| {label} | {loss} | {cells} | {mean_chrf(results):.1f} | "
              f"{100 * mean_chrf(results) / mean_chrf(teacher_scores):.1f}% | {agree} |")
    speeds = {}
    for label, model in (("teacher", a.teacher), ("student", str(work / "word"))):
        b = run([a.t5, "bench", "--model", model, "--only", "ttft,greedy", "--runs", "9", "--threads", a.threads, "--json"])
        speeds[label] = b["greedy_b1_tokens_per_s"]
    print(f"greedy decode, batch 1 (`t5 bench --only ttft,greedy --runs 9`): teacher {speeds['teacher']:,.0f} tokens/s, "
          f"student {speeds['student']:,.0f} tokens/s, speed-up {speeds['student'] / speeds['teacher']:.2f}x")


if __name__ == "__main__":
    main()
