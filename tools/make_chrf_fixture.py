#!/usr/bin/env python3
"""chrF reference scores from sacrebleu (2.6, `CHRF()` defaults) for ChrF's test.

    python3 tools/make_chrf_fixture.py      (writes Tests/Fixtures/reference/chrf.json)

Each case is a corpus (hypotheses with one reference each) and sacrebleu's corpus score; the cases cover
exact and partial matches, empty hypotheses and references, segments shorter than the n-gram order, whitespace
of several kinds, precomposed versus decomposed accents, and a few held-out default-model style sentences.
"""

import json
import os

from sacrebleu.metrics import CHRF

CASES = [
    (["La casa es maravillosa."], ["La casa es bonita."]),
    (["La casa es maravillosa."], ["La casa es maravillosa."]),
    ([""], ["Haus"]),
    (["Haus"], [""]),
    (["ab"], ["abc"]),
    (["Haus", "Hund", "Wasser"], ["Haus", "Hunde", "Waser"]),
    (["El  perro\tcome\u00a0carne ."], ["El perro come carne."]),
    (["caf\u00e9"], ["cafe\u0301"]),
    (["It writes, draw, or trace with chalk.", "Fact of goats' milk."],
     ["It writes, draws, or traces with chalk.", "Made of goats' milk."]),
    (["Una muralla construida alrededor de la copa de un castillo."],
     ["Una muralla construida alrededor de la parte superior de un castillo con huecos."]),
    (["x\u001cy"], ["xy"]),
]


def main():
    chrf = CHRF()
    out = [{"hypotheses": h, "references": r, "score": chrf.corpus_score(h, [r]).score} for h, r in CASES]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "reference", "chrf.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
