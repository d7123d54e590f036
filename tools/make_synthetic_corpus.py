#!/usr/bin/env python3
"""Write a generated plain-text corpus for `t5 pretrain` memory and speed measurements (README, Pretraining,
Memory): pseudo-words from 20 syllables with Zipf frequencies, 1-6 lines per document, blank lines between.

    python3 tools/make_synthetic_corpus.py OUT.txt [MEGABYTES]     (default 50; seed 5)

The 2 GB corpus of README is 40 copies of the 50 MB one: `for i in $(seq 40); do cat c50.txt; done > c2g.txt`.
"""

import random
import sys


def main():
    out = sys.argv[1]
    limit = int(float(sys.argv[2]) * 1_000_000) if len(sys.argv) > 2 else 50_000_000
    random.seed(5)
    syll = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vi", "po", "da", "ge", "fi", "ho", "ju", "be", "ce", "ti",
            "ra", "no", "me"]
    words = ["".join(random.choice(syll) for _ in range(random.randint(1, 4))) for _ in range(5000)]
    weights = [1.0 / (i + 1) for i in range(len(words))]
    with open(out, "w") as f:
        size = 0
        while size < limit:
            doc = []
            for _ in range(random.randint(1, 6)):
                doc.append(" ".join(random.choices(words, weights, k=random.randint(5, 40))) + ".")
            s = "\n".join(doc) + "\n\n"
            f.write(s)
            size += len(s)


if __name__ == "__main__":
    main()
