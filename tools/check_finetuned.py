#!/usr/bin/env python3
"""Checks that a directory written by `t5 finetune` loads in transformers and scores like `t5 score`.

    python tools/check_finetuned.py OUT [--t5 .build/release/t5] [--pair INPUT TARGET]...

Loads OUT with T5ForConditionalGeneration.from_pretrained and T5Tokenizer.from_pretrained, computes the
log-probability of each target token given the input (teacher forcing, </s> appended), runs
`t5 score --model OUT --json` on the same pair, and prints the largest difference. Exits non-zero if
it exceeds --tolerance or if the greedy outputs differ.
"""

import argparse
import json
import subprocess
import sys

import torch
from transformers import T5ForConditionalGeneration, T5Tokenizer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--t5", default=".build/release/t5")
    parser.add_argument("--pair", nargs=2, action="append", metavar=("INPUT", "TARGET"))
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    pairs = args.pair or [("reverse: 3 1 4 1 5", "5 1 4 1 3"), ("sort: 9 2 7", "2 7 9"), ("add: 4 8", "12")]

    torch.set_num_threads(1)
    model = T5ForConditionalGeneration.from_pretrained(args.out).eval()
    tokenizer = T5Tokenizer.from_pretrained(args.out)
    worst = 0.0
    ok = True
    for source, target in pairs:
        enc = tokenizer(source, return_tensors="pt")
        labels = tokenizer(target, return_tensors="pt").input_ids
        with torch.no_grad():
            logits = model(**enc, labels=labels).logits[0]
            theirs = torch.log_softmax(logits.double(), -1).gather(1, labels[0][:, None])[:, 0].tolist()
            greedy = model.generate(**enc, max_new_tokens=32, do_sample=False, num_beams=1)[0].tolist()
        run = subprocess.run([args.t5, "score", "--model", args.out, "--input", source, "--target", target, "--json"],
                             capture_output=True, text=True, check=True)
        ours = json.loads(run.stdout)["logprobs"]
        diff = max(abs(a - b) for a, b in zip(ours, theirs))
        worst = max(worst, diff)
        gen = subprocess.run([args.t5, "generate", "--model", args.out, "--json", "--max-new-tokens", "32", source],
                             capture_output=True, text=True, check=True)
        our_ids = json.loads(gen.stdout)["outputs"][0]["ids"]
        same = our_ids == greedy[1:]
        ok &= same
        print(f"{source!r} -> {tokenizer.decode(greedy, skip_special_tokens=True)!r}: max |logprob diff| {diff:.2e}, "
              f"greedy ids {'equal' if same else 'DIFFER: ' + str(our_ids) + ' vs ' + str(greedy[1:])}")
    print(f"transformers loads {args.out}; worst log-prob difference {worst:.2e}")
    sys.exit(0 if ok and worst <= args.tolerance else 1)


if __name__ == "__main__":
    main()
