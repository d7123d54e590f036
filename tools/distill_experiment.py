#!/usr/bin/env python3
"""The distillation experiment of README's Distillation section.

The bundled model (2 + 2 blocks, trained on the synthetic reverse/sort/add tasks) is the teacher. Students keep
its encoder and half its decoder (2 + 1 blocks, copied from it: --student-init teacher --student-layers decoder=0)
and train for the same steps (a) on the labels alone, (b) distilled word-level, (c) sequence-level, (d) word-level
plus the hidden-state term. Prints each one's held-out loss and exact match (the teacher's too) and the greedy
decode speed of teacher and student from `t5 bench`.

    python3 tools/distill_experiment.py [--t5 .build/release/t5] [--work /tmp/distill-experiment] [--steps 400]

The data is the bundled model's recipe (README, "Example: three tasks from scratch"), the same command, so the
200 validation examples per task were never trained on (add's 100 possible sums excepted). Students train on
the first 4,000 pairs of each task, so that sequence level generates 12,000 teacher outputs.
"""

import argparse
import json
import shutil
import subprocess
from pathlib import Path

TASKS = ["reverse", "sort", "add"]


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--t5", default=".build/release/t5")
    p.add_argument("--work", default="/tmp/distill-experiment")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--threads", default="2")
    a = p.parse_args()
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    data = work / "data"
    subprocess.run(["python3", "tools/make_synthetic_tasks.py", str(data), "--train", "20000", "--valid", "200"],
                   check=True, capture_output=True)
    train, valid = [], []
    for t in TASKS:
        small = data / f"{t}.small.jsonl"
        small.write_text("".join((data / f"{t}.train.jsonl").read_text().splitlines(keepends=True)[:4000]))
        train += ["--train", f"{t}: ={small}"]
        valid += ["--valid", f"{t}: ={data / f'{t}.valid.jsonl'}"]
    common = ["--batch-size", "32", "--optimizer", "adamw", "--max-target-tokens", "16", "--eval-generate",
              "--threads", a.threads, "--seed", "1", "--json", "--quiet"]
    rows = []
    # The teacher's own figures (its evaluation at the end of one AdamW step at a learning rate of 1e-12, with no
    # weight decay, which moves no weight by more than about 1e-12; t5 refuses a rate of 0).
    s = run([a.t5, "finetune", "--model", "models/default", "--out", str(work / "teacher"), "--steps", "1", "--lr", "1e-12",
             "--weight-decay", "0", *train, *valid, *common])
    rows.append(("teacher (2+2 blocks)", s))
    students = [
        ("labels only (--alpha 1)", ["--alpha", "1"]),
        ("word-level (--alpha 0.2 --temperature 2)", []),
        ("sequence-level (--sequence-level --alpha 1)", ["--sequence-level", "--alpha", "1"]),
        ("word-level + hidden (--hidden-weight 1)", ["--hidden-weight", "1"]),
    ]
    for i, (name, flags) in enumerate(students):
        s = run([a.t5, "distill", "--teacher", "models/default", "--student-init", "teacher", "--student-layers", "decoder=0",
                 "--out", str(work / f"student-{i}"), "--steps", str(a.steps), "--lr", "1e-3", *train, *valid, *common, *flags])
        rows.append((name, s))
    print(f"| model | held-out loss | exact match | training s |")
    print("|---|---|---|---|")
    for name, s in rows:
        print(f"| {name} | {s['eval_loss']:.4f} | {100 * s['eval_exact_match']:.1f}% | {s['elapsed_s']:.1f} |")
    speeds = {}
    for label, model in [("teacher", "models/default"), ("student", str(work / "student-1"))]:
        b = run([a.t5, "bench", "--model", model, "--only", "greedy", "--runs", "9", "--threads", a.threads, "--json"])
        speeds[label] = b["greedy_b1_tokens_per_s"]
    print(f"greedy decode, batch 1: teacher {speeds['teacher']:.0f} tokens/s, student {speeds['student']:.0f} tokens/s, "
          f"speed-up {speeds['student'] / speeds['teacher']:.2f}x")


if __name__ == "__main__":
    main()
