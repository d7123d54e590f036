#!/usr/bin/env python3
"""generation_config.json answered by transformers' generate() with no arguments.

For each settings object below, a copy of Tests/Fixtures/models/t5-relu-tied gets it as its
generation_config.json, is loaded with T5ForConditionalGeneration.from_pretrained, and
model.generate(input_ids=..., attention_mask=...) is called with nothing else: whatever the file says
(beams, lengths, no-repeat n-grams, length penalty, eos lists, max_length counting the start token) is what
transformers does. Writes Tests/Fixtures/reference/generation-config.json.

Run by hand (needs pip's torch, transformers):  python3 tools/make_generation_config_fixtures.py
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
import transformers
from transformers import T5ForConditionalGeneration, T5Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402

MODEL = "t5-relu-tied"
BASE = {"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}
SETTINGS = [
    {"num_beams": 3, "max_new_tokens": 20, "no_repeat_ngram_size": 2, "length_penalty": 0.8, "early_stopping": True},
    {"num_beams": 4, "max_length": 16, "num_return_sequences": 2, "length_penalty": 1.5},
    {"num_beams": 2, "max_new_tokens": 25, "min_new_tokens": 10, "no_repeat_ngram_size": 3, "early_stopping": "never"},
    {"max_new_tokens": 30, "repetition_penalty": 1.4, "no_repeat_ngram_size": 2},
    {"max_length": 12},
    {},
]
INPUTS = mf.GEN_INPUTS[:4]


def main():
    tok = T5Tokenizer.from_pretrained(str(mf.MODELS_DIR / MODEL))
    cases = []
    for settings in SETTINGS:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp) / MODEL
            shutil.copytree(mf.MODELS_DIR / MODEL, d)
            (d / "generation_config.json").write_text(json.dumps({**BASE, **settings}))
            model = T5ForConditionalGeneration.from_pretrained(d, dtype=torch.float32).eval()
            for text in INPUTS:
                ids = tok(text).input_ids
                with torch.no_grad():
                    out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long))
                outputs = [mf.strip_generated(row) for row in out.tolist()]
                cases.append({"generation_config": {**BASE, **settings}, "input": text, "outputs": outputs})
                mf.log(settings, text[:30], [len(o) for o in outputs])
    mf.dump_json(mf.REF_DIR / "generation-config.json", {
        "generator": "tools/make_generation_config_fixtures.py", "model": MODEL,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__}, "cases": cases}, depth=3)


if __name__ == "__main__":
    main()
