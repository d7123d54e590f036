#!/usr/bin/env python3
"""What `--weights bf16` and `--weights int8` cost in accuracy, measured through the `t5` binary.

For every (input, target) example, against the same model loaded with `--weights f32`:
  - mean |Δ log-prob| per target token: `t5 score --json` (teacher forcing, eos appended) under each
    precision, token by token against fp32's log-probabilities;
  - greedy agreement: `t5 generate --json` (greedy, --max-new-tokens) under each precision, the share of
    examples whose output ids equal fp32's exactly, and the share of fp32's tokens in the common prefix;
  - exact match of the greedy output text with the target (the task accuracy), for every precision.

fp32 itself matches transformers within 1e-4 per log-prob (the parity tests), so fp32 stands in for the
reference here.

    python3 tools/bench/precision_accuracy.py --t5 .build/release/t5 --model models/default \
        --data reverse:=VALID/reverse.valid.jsonl --data sort:=VALID/sort.valid.jsonl [--limit 100] [--json out]

--data PREFIX=FILE reads JSON Lines with "input" and "target" (make_synthetic_tasks.py's files) and puts
PREFIX in front of every input. Without --data, the synthetic reverse/sort/add validation sets are made
in a temporary directory with tools/make_synthetic_tasks.py (what the bundled default model was trained on).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"precision_accuracy: {' '.join(cmd[:3])} ... failed: {done.stderr.strip()}")
    return done.stdout


def load_examples(specs, limit):
    examples = []
    for spec in specs:
        prefix, _, path = spec.partition("=")
        if not path:
            sys.exit(f"precision_accuracy: --data {spec}: expected PREFIX=FILE")
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        for row in rows[:limit]:
            examples.append((prefix + row["input"], row["target"]))
    return examples


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--t5", required=True, help="path to the t5 binary")
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", action="append", default=[], help="PREFIX=FILE (JSON Lines with input, target)")
    ap.add_argument("--limit", type=int, default=100, help="examples per --data file")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        specs = args.data
        if not specs:
            run([sys.executable, os.path.join(HERE, "..", "make_synthetic_tasks.py"), tmp, "--train", "1"])
            specs = [f"{task}: ={tmp}/{task}.valid.jsonl" for task in ("reverse", "sort", "add")]
        examples = load_examples(specs, args.limit)
        inputs = os.path.join(tmp, "inputs.txt")
        with open(inputs, "w") as f:
            for text, _ in examples:
                f.write(text + "\n")

        generated, scored = {}, {}
        for precision in ("f32", "bf16", "int8"):
            out = run([args.t5, "generate", "--model", args.model, "--weights", precision, "--input-file", inputs,
                       "--max-new-tokens", str(args.max_new_tokens), "--json"])
            generated[precision] = [json.loads(line)["outputs"][0] for line in out.splitlines() if line.strip()]
            scored[precision] = []
            for text, target in examples:
                out = run([args.t5, "score", "--model", args.model, "--weights", precision,
                           "--input", text, "--target", target, "--json"])
                scored[precision].append(json.loads(out)["logprobs"])

    report = {"model": args.model, "examples": len(examples), "data": specs if args.data else "synthetic reverse/sort/add valid"}
    for precision in ("f32", "bf16", "int8"):
        exact = sum(g["text"].strip() == t.strip() for g, (_, t) in zip(generated[precision], examples))
        entry = {"task_exact_match": exact / len(examples)}
        if precision != "f32":
            deltas = [abs(a - b) for ref, got in zip(scored["f32"], scored[precision]) for a, b in zip(ref, got)]
            same, prefix, total = 0, 0, 0
            for ref, got in zip(generated["f32"], generated[precision]):
                same += ref["ids"] == got["ids"]
                n = 0
                while n < min(len(ref["ids"]), len(got["ids"])) and ref["ids"][n] == got["ids"][n]:
                    n += 1
                prefix += n
                total += len(ref["ids"])
            entry.update({
                "mean_abs_delta_logprob_per_token": statistics.fmean(deltas),
                "max_abs_delta_logprob": max(deltas),
                "greedy_identical_outputs": same / len(examples),
                "greedy_prefix_agreement_tokens": prefix / max(total, 1),
            })
        report[precision] = entry

    print(f"model {args.model}, {len(examples)} examples")
    print("| weights | mean abs Δ log-prob / token vs f32 | max abs Δ | greedy outputs identical to f32 | "
          "greedy prefix agreement (tokens) | task exact match |")
    print("|---|---|---|---|---|---|")
    for precision in ("f32", "bf16", "int8"):
        e = report[precision]
        if precision == "f32":
            print(f"| f32 | – | – | – | – | {e['task_exact_match']:.1%} |")
        else:
            print(f"| {precision} | {e['mean_abs_delta_logprob_per_token']:.2e} | {e['max_abs_delta_logprob']:.2e} | "
                  f"{e['greedy_identical_outputs']:.1%} | {e['greedy_prefix_agreement_tokens']:.1%} | "
                  f"{e['task_exact_match']:.1%} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
