#!/usr/bin/env python3
"""Scores a model on the default model's held-out test split, per task, and draws its training curves.

    python3 tools/default_model_eval.py --t5 .build/release/t5 --model DIR --data DATA --out eval.json \
        [--split test] [--curves metrics.jsonl --svg curves.svg]

For each task, `t5 generate --json` (greedy, the model's generation_config) translates every input of
DATA/<task>.<split>.jsonl; the outputs are scored against the references (Apertium's translations, FreeDict's
headwords) with sacrebleu's corpus chrF (chrF2: character n-grams up to 6, beta 2; Popovic 2015) and exact
match. `--split sample` scores the first 100 test examples, the fixed sample of Tests/Fixtures/default-model/
that DefaultModelTests checks against models/README.md.
"""

import argparse
import json
import subprocess

from sacrebleu.metrics import CHRF

TASKS = [
    ("en-es", "translate English to Spanish: "),
    ("es-en", "translate Spanish to English: "),
    ("en-de", "translate English to German: "),
]


def generate(t5, model, inputs, threads=None):
    text = "".join(json.dumps({"input": i}, ensure_ascii=False) + "\n" for i in inputs)
    threads = ["--threads", str(threads)] if threads else []
    out = subprocess.run([t5, "generate", "--model", model, "--jsonl", "--json", "--quiet", *threads],
                         input=text, capture_output=True, text=True, check=True).stdout
    outputs = [json.loads(line)["outputs"][0]["text"] for line in out.splitlines() if line.strip()]
    if len(outputs) != len(inputs):
        raise SystemExit(f"t5 generate: {len(inputs)} inputs, {len(outputs)} outputs")
    return outputs


def svg_curves(metrics_path, svg_path):
    """Training loss (every logged step) and validation loss / exact match (every evaluation) against steps,
    as a self-contained SVG."""
    # A resumed run logs again the steps after its last checkpoint: keep each step's last record.
    train, valid = {}, {}
    for line in open(metrics_path):
        record = json.loads(line)
        if record["type"] == "eval":
            valid[record["step"]] = (record["step"], record["loss"], record.get("exact_match"))
        elif record["type"] == "train" and record["loss"] is not None:
            train[record["step"]] = (record["step"], record["loss"])
    train, valid = sorted(train.values()), sorted(valid.values())
    width, height, left, top, plot_w, plot_h = 760, 360, 60, 30, 640, 270
    max_step = max([s for s, _ in train] + [s for s, _, _ in valid] + [1])
    max_loss = max([l for _, l in train] + [l for _, l, _ in valid if l is not None] + [1e-9])

    def x(step):
        return left + plot_w * step / max_step

    def y(value, top_value):
        return top + plot_h * (1 - value / top_value)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="black"/>',
             f'<line x1="{left + plot_w}" y1="{top}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="black"/>']
    for i in range(5):
        step = max_step * i / 4
        parts.append(f'<text x="{x(step):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{int(step)}</text>')
        loss = max_loss * i / 4
        parts.append(f'<text x="{left - 6}" y="{y(loss, max_loss) + 4:.1f}" text-anchor="end">{loss:.2f}</text>')
        parts.append(f'<text x="{left + plot_w + 6}" y="{y(i / 4, 1) + 4:.1f}">{i * 25}%</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">optimizer step</text>')
    if train:
        # A moving average over 50 logged steps keeps the per-batch noise from hiding the trend.
        smoothed, window = [], []
        for step, loss in train:
            window = (window + [loss])[-50:]
            smoothed.append((step, sum(window) / len(window)))
        points = " ".join(f"{x(s):.1f},{y(l, max_loss):.1f}" for s, l in smoothed)
        parts.append(f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{points}"/>')
    if valid:
        points = " ".join(f"{x(s):.1f},{y(l, max_loss):.1f}" for s, l, _ in valid if l is not None)
        parts.append(f'<polyline fill="none" stroke="#d62728" stroke-width="2" points="{points}"/>')
        matches = [(s, m) for s, _, m in valid if m is not None]
        if matches:
            points = " ".join(f"{x(s):.1f},{y(m, 1):.1f}" for s, m in matches)
            parts.append(f'<polyline fill="none" stroke="#2ca02c" stroke-width="2" stroke-dasharray="5,3" points="{points}"/>')
    legend = [("#1f77b4", "training loss (mean of 50 steps)"), ("#d62728", "validation loss"),
              ("#2ca02c", "validation exact match (right axis)")]
    for i, (color, label) in enumerate(legend):
        parts.append(f'<line x1="{left + 330}" y1="{top + 14 + 16 * i}" x2="{left + 350}" y2="{top + 14 + 16 * i}" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{left + 356}" y="{top + 18 + 16 * i}">{label}</text>')
    parts.append("</svg>")
    with open(svg_path, "w") as f:
        f.write("\n".join(parts) + "\n")


def score(t5, model, data, split="test", sample=100, threads=None):
    """{task: {"examples", "chrF", "exact_match", "samples"}} of `model` on DATA/<task>.<split>.jsonl, printing
    one line per task."""
    chrf = CHRF()
    results = {}
    for name, prefix in TASKS:
        pairs = [json.loads(line) for line in open(f"{data}/{name}.{'test' if split == 'sample' else split}.jsonl")]
        if split == "sample":
            pairs = pairs[:sample]
        outputs = generate(t5, model, [prefix + p["input"] for p in pairs], threads)
        references = [p["target"] for p in pairs]
        chrf_score = chrf.corpus_score(outputs, [references]).score
        exact = sum(o == r for o, r in zip(outputs, references)) / len(pairs)
        results[name] = {"examples": len(pairs), "chrF": round(chrf_score, 2), "exact_match": round(100 * exact, 2),
                         "samples": [{"input": p["input"], "reference": r, "output": o}
                                     for p, r, o in list(zip(pairs, references, outputs))[:5]]}
        print(f"{name}: chrF {chrf_score:.2f}, exact match {100 * exact:.2f}% over {len(pairs)}")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--t5", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test", help="test, valid, or sample (the first --sample test examples)")
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--out", required=True)
    parser.add_argument("--curves")
    parser.add_argument("--svg")
    args = parser.parse_args()
    results = score(args.t5, args.model, args.data, args.split, args.sample)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1, ensure_ascii=False)
    if args.curves and args.svg:
        svg_curves(args.curves, args.svg)


if __name__ == "__main__":
    main()
