#!/usr/bin/env python3
"""The fixture tokenizer (Tests/Fixtures/spm/spiece.model) as transformers' fast-tokenizer file alone, and its answers.

Writes:
  Tests/Fixtures/tokenizers/t5-fast/               T5TokenizerFast.from_pretrained(Tests/Fixtures/spm).save_pretrained,
                                                   without spiece.model: tokenizer.json + tokenizer_config.json, a
                                                   directory as a user gets it from a fast-tokenizer-only save
  Tests/Fixtures/reference/t5-fast-tokenizer.json  T5TokenizerFast loaded from that directory: len(tokenizer), input_ids,
                                                   convert_ids_to_tokens and decode(skip_special_tokens=True) of
                                                   make_fixtures.ENCODE_TEXTS plus seeded random texts, and decode of
                                                   seeded random id lists

Checks (asserts, nothing recorded): the ids agree with T5Tokenizer's from spiece.model, and with the file run verbatim by
`tokenizers` (the pipeline as written, which transformers 4 used) both as saved and with the legacy Metaspace form
`{"replacement": "▁", "add_prefix_space": true}` that older tokenizers versions wrote (tokenizers reads it as
prepend_scheme "always", split true).

Run by hand (needs pip's transformers, tokenizers, sentencepiece):  python3 tools/make_tokenizer_json_fixture.py
"""
from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

import tokenizers
import transformers
from transformers import T5Tokenizer, T5TokenizerFast

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402

OUT = mf.FIX / "tokenizers" / "t5-fast"
REFERENCE = mf.REF_DIR / "t5-fast-tokenizer.json"
SEED = 20261205

POOL = (list("abcdefghijklmnopqrstuvwxyz ") + ["the", "dog", "walks", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000",
        "\u0085", "\u2028", "\u200b", "\ufeff", "é", "e\u0301", "ß", "Ａ", "１", "ﬁ", "①", "™", "½", "你", "好", "🙂",
        "👍🏽", "0", "7", "12", ".", ",", "!", "?", "'", "-", "+", "<", ">", "/", "_", "▁", "＜", "＞", "\x00", "\x01"]
        + ["<pad>", "</s>", "<unk>", "<extra_id_0>", "<extra_id_7>", "<extra_id_99>", "<extra_id_100>", "＜/s＞"])


def random_texts(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice(POOL) for _ in range(rng.randint(0, 16))) for _ in range(n)]


def random_id_lists(rng: random.Random, size: int, metaspace: int, n: int) -> list[list[int]]:
    lists = []
    for _ in range(n):
        ids = []
        for _ in range(rng.randint(0, 16)):
            r = rng.random()
            ids.append(rng.randint(0, 2) if r < 0.1 else metaspace if r < 0.2 else
                       rng.randint(size - 100, size - 1) if r < 0.3 else rng.randint(3, size - 101))
        lists.append(ids)
    return lists


def legacy_metaspace(tokenizer_json: str) -> str:
    """The file with both Metaspace objects in the form older tokenizers versions wrote."""
    new = '{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}'
    old = '{"type":"Metaspace","replacement":"▁","add_prefix_space":true}'
    j = json.loads(tokenizer_json)
    compact = json.dumps(j, ensure_ascii=False, separators=(",", ":"))
    assert compact.count(new) == 2, "the saved file no longer has two Metaspace objects of the expected form"
    return compact.replace(new, old)


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    T5TokenizerFast.from_pretrained(str(mf.SPM_DIR)).save_pretrained(str(OUT))
    for extra in ("spiece.model", "special_tokens_map.json"):
        (OUT / extra).unlink(missing_ok=True)
    assert sorted(p.name for p in OUT.iterdir()) == ["tokenizer.json", "tokenizer_config.json"], list(OUT.iterdir())

    tok = T5TokenizerFast.from_pretrained(str(OUT))
    slow = T5Tokenizer.from_pretrained(str(mf.SPM_DIR))
    text = (OUT / "tokenizer.json").read_text(encoding="utf-8")
    verbatim = tokenizers.Tokenizer.from_str(text)
    legacy = tokenizers.Tokenizer.from_str(legacy_metaspace(text))
    assert json.loads(legacy.to_str())["pre_tokenizer"] == json.loads(verbatim.to_str())["pre_tokenizer"]

    rng = random.Random(SEED)
    texts = mf.ENCODE_TEXTS + random_texts(rng, 200)
    encode = []
    for t in texts:
        ids = tok(t).input_ids
        assert ids == slow(t).input_ids == verbatim.encode(t).ids == legacy.encode(t).ids, t
        encode.append({"text": t, "ids": ids, "pieces": tok.convert_ids_to_tokens(ids),
                       "decoded": tok.decode(ids, skip_special_tokens=True)})
    decode = []
    for ids in random_id_lists(rng, len(tok), tok.convert_tokens_to_ids("▁"), 150):
        out = tok.decode(ids, skip_special_tokens=True)
        assert out == slow.decode(ids, skip_special_tokens=True), ids
        assert verbatim.decode(ids, skip_special_tokens=True) == legacy.decode(ids, skip_special_tokens=True), ids
        decode.append({"ids": ids, "text": out})
    reference = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                 "directory": str(OUT.relative_to(mf.FIX)), "size": len(tok), "encode": encode, "decode": decode}
    mf.dump_json(REFERENCE, reference, depth=2)
    print(f"{OUT}: {sorted(p.name for p in OUT.iterdir())}; {REFERENCE}: {len(encode)} texts, {len(decode)} id lists")


if __name__ == "__main__":
    main()
