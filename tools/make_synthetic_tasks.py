#!/usr/bin/env python3
"""Synthetic prefix tasks for trying `t5 finetune` end to end: reverse, sort and add on digits.

    reverse: 3 1 4 1 5   ->  5 1 4 1 3
    sort: 3 1 4 1 5      ->  1 1 3 4 5
    add: 7 5             ->  12

Digits are separated by spaces so every number is one piece of Tests/Fixtures/spm/spiece.model
("▁0" … "▁40"), which the bundled default model reuses. Each task is written as its own JSON
Lines file without the prefix; `t5 finetune --train 'reverse: =reverse.train.jsonl' ...` adds it.

    python tools/make_synthetic_tasks.py OUTDIR [--train N] [--valid N] [--seed S]

Validation examples never occur in the training files.
"""

import argparse
import json
import os
import random


def reverse(rng, lo, hi):
    digits = [rng.randrange(10) for _ in range(rng.randint(lo, hi))]
    return " ".join(map(str, digits)), " ".join(map(str, digits[::-1]))


def sort(rng, lo, hi):
    digits = [rng.randrange(10) for _ in range(rng.randint(lo, hi))]
    return " ".join(map(str, digits)), " ".join(map(str, sorted(digits)))


def add(rng, lo, hi):
    a, b = rng.randrange(10), rng.randrange(10)
    return f"{a} {b}", str(a + b)


TASKS = {"reverse": reverse, "sort": sort, "add": add}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=2000, help="training examples per task")
    parser.add_argument("--valid", type=int, default=100, help="validation examples per task")
    parser.add_argument("--min-digits", type=int, default=3)
    parser.add_argument("--max-digits", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    for name, make in TASKS.items():
        valid, seen = [], set()
        # add has only 100 distinct examples: its validation set is drawn from the same space.
        while len(valid) < args.valid:
            pair = make(rng, args.min_digits, args.max_digits)
            if name != "add" and pair in seen:
                continue
            seen.add(pair)
            valid.append(pair)
        train = []
        while len(train) < args.train:
            pair = make(rng, args.min_digits, args.max_digits)
            if name != "add" and pair in seen:
                continue
            train.append(pair)
        for split, rows in [("train", train), ("valid", valid)]:
            path = os.path.join(args.out, f"{name}.{split}.jsonl")
            with open(path, "w") as f:
                for x, y in rows:
                    f.write(json.dumps({"input": x, "target": y}) + "\n")
            print(f"wrote {path} ({len(rows)} examples)")


if __name__ == "__main__":
    main()
