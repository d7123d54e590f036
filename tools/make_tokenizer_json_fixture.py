#!/usr/bin/env python3
"""The fixture tokenizer (Tests/Fixtures/spm/spiece.model) as transformers' fast-tokenizer file alone.

T5TokenizerFast.from_pretrained(Tests/Fixtures/spm).save_pretrained(Tests/Fixtures/tokenizers/t5-fast), without
spiece.model: a directory as a user gets it from a fast-tokenizer-only save. Its ids are transformers' T5
tokenizer's, recorded in Tests/Fixtures/reference/tokenizer.json by tools/make_fixtures.py; this script checks that
T5TokenizerFast loaded from the written directory gives those ids.

Run by hand (needs pip's transformers, tokenizers, sentencepiece):  python3 tools/make_tokenizer_json_fixture.py
"""
import json
import shutil
from pathlib import Path

from transformers import T5TokenizerFast

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "Tests" / "Fixtures"
OUT = FIX / "tokenizers" / "t5-fast"


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    T5TokenizerFast.from_pretrained(str(FIX / "spm")).save_pretrained(str(OUT))
    for extra in ("spiece.model", "special_tokens_map.json"):
        (OUT / extra).unlink(missing_ok=True)
    assert (OUT / "tokenizer.json").exists()
    reloaded = T5TokenizerFast.from_pretrained(str(OUT))
    reference = json.loads((FIX / "reference" / "tokenizer.json").read_text())
    for case in reference["encode"]:
        assert reloaded(case["text"]).input_ids == case["ids"], case["text"]
    print(f"{OUT}: {sorted(p.name for p in OUT.iterdir())}; {len(reference['encode'])} reference texts agree")


if __name__ == "__main__":
    main()
