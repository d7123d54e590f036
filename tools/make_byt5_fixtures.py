#!/usr/bin/env python3
"""ByT5 reference answers from transformers (PyTorch, fp32): a tiny ByT5 model and ByT5Tokenizer in four
directory layouts.

Writes:
  Tests/Fixtures/models/byt5-tiny/          T5ForConditionalGeneration (vocab 384, T5 v1.1 style) as
                                            save_pretrained writes it, with ByT5Tokenizer().save_pretrained
                                            (tokenizer_config.json with added_tokens_decoder, added_tokens.json);
                                            no spiece.model
  Tests/Fixtures/reference/byt5-tiny.json   scores, log-prob rows, encoder states, greedy, beam and batches, as
                                            make_fixtures.py records them for the SentencePiece models
  Tests/Fixtures/tokenizers/byt5-*/         the other layouts: hub (transformers 4: extra_ids +
                                            additional_special_tokens, special_tokens_map.json), added (user tokens
                                            with lstrip / rstrip / single_word / special), extra3 (extra_ids 3)
  Tests/Fixtures/reference/byt5-tokenizer.json   for each layout: len(tokenizer), input_ids of fixed and random
                                            texts (emoji, NUL, C1 controls, Python-only whitespace, special tokens
                                            with spaces around them), convert_ids_to_tokens, and
                                            decode(skip_special_tokens=True) of fixed and random id lists (cut
                                            UTF-8 sequences, overlong forms, surrogates, added tokens)

Run by hand (needs pip's torch, transformers):  python3 tools/make_byt5_fixtures.py
"""
from __future__ import annotations

import copy
import json
import random
import shutil
import sys
from pathlib import Path

import torch
import transformers
from transformers import AddedToken, AutoTokenizer, ByT5Tokenizer, T5ForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402

NAME = "byt5-tiny"
TOKENIZERS_DIR = mf.FIX / "tokenizers"
SEED = 20261204

EXTRA_TEXTS = [
    "\x00NUL\x01\x1f\x7f",
    "C1 \x80\x9f control",
    "\u00ff\u0100 \ufeff BOM \ufffd",
    "a </s> b", "a  <unk>  b", "a\u00a0<pad>\u3000b", "x\u001c</s>\u001dy", "\t<pad>\n", "x</s>", "x</s></s>",
    "</s>", "<pad>", "end </s> ", "a <extra_id_0> b", "<extra_id_124>", "<extra_id_125>", "<extra_id_2>x<extra_id_1>",
    "<sep>", "x<sep>y", "ab cab c", "q <L> r", "q <R> r", "q<W>r", "q <W> r", "q<W> r", "<special> s",
    "<extra_id_", "<<extra_id_0>>", "😀 🇩🇪 👨\u200d👩\u200d👧", "\U0010ffff \U0001f600",
    "a , b .", "don 't", "x \u0085 y \u2028 z",
]

POOL = (list("abcxyz ") + [" ", "  ", "\t", "\n", "\u00a0", "\u0085", "\u3000", "\u2003", "\x1c", "\x00", "é", "ß",
        "😀", "\u0301", "你", "<", ">", "/", "s"] + ["<pad>", "</s>", "<unk>", "<extra_id_0>", "<extra_id_7>",
        "<extra_id_2>", "<extra_id_124>", "<extra_id_125>", "<sep>", "ab c", "<L>", "<R>", "<W>", "<special>"])


def random_texts(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice(POOL) for _ in range(rng.randint(0, 12))) for _ in range(n)]


def decode_cases(tok, rng: random.Random, n: int) -> list[list[int]]:
    size = len(tok)
    b = lambda x: x + 3  # noqa: E731
    fixed = [
        [], [0, 1, 2], [b(0x68), b(0x69), 1],
        [b(0xF0), b(0x9F), b(0x98), b(0x80)],            # 😀
        [b(0xF0), b(0x9F), b(0x98)],                     # cut at the end
        [b(0xF0), b(0x9F), b(0x61), b(0x98), b(0x80)],   # cut in the middle, continuation bytes alone
        [b(0xC0), b(0x80), b(0x41)],                     # overlong
        [b(0xED), b(0xA0), b(0x80), b(0x42)],            # surrogate
        [b(0xF4), b(0x90), b(0x80), b(0x80), b(0x43)],   # above U+10FFFF
        [b(0xE2), b(0x82), b(0xE2), b(0x82), b(0xAC)],   # cut, then €
        [b(0xFF), b(0xFE), b(0x44)],
        [b(0xC3), 259, b(0xA9)],                         # a sentinel inside a character
        [b(0xC3), 1, b(0xA9)],                           # eos inside a character
    ]
    cases = [c for c in fixed if all(i < size for i in c)]
    added = [i for i in range(259, size)]
    for _ in range(n):
        ids = []
        for _ in range(rng.randint(0, 16)):
            r = rng.random()
            if r < 0.45:
                ids.append(b(rng.randint(0x20, 0x7E)))
            elif r < 0.8:
                ids.append(b(rng.randint(0x80, 0xFF)))
            elif r < 0.9 and added:
                ids.append(rng.choice(added))
            else:
                ids.append(rng.randint(0, 2))
        cases.append(ids)
    return cases


def tokenizer_reference(path: Path, rng: random.Random) -> dict:
    tok = AutoTokenizer.from_pretrained(str(path))
    assert type(tok).__name__ == "ByT5Tokenizer", type(tok)
    texts = mf.ENCODE_TEXTS + EXTRA_TEXTS + random_texts(rng, 150)
    encode = [{"text": t, "ids": tok(t).input_ids} for t in texts]
    decode = [{"ids": ids, "text": tok.decode(ids, skip_special_tokens=True)} for ids in decode_cases(tok, rng, 150)]
    piece_ids = [0, 1, 2, 3, 35, 100, 130, 131, 258] + list(range(259, len(tok)))[:8] + list(range(259, len(tok)))[-4:]
    pieces = [{"id": i, "piece": tok.convert_ids_to_tokens(i)} for i in piece_ids]
    sentinels = [tok.convert_tokens_to_ids(f"<extra_id_{n}>") for n in range(200)
                 if f"<extra_id_{n}>" in tok.get_vocab()]
    return {"directory": str(path.relative_to(mf.FIX)), "size": len(tok), "sentinel_ids": sentinels,
            "encode": encode, "decode": decode, "pieces": pieces}


def write_layouts() -> list[Path]:
    # Only this script's layouts: tokenizers/ also holds t5-fast (tools/make_tokenizer_json_fixture.py).
    for old in TOKENIZERS_DIR.glob("byt5-*"):
        shutil.rmtree(old)
    TOKENIZERS_DIR.mkdir(parents=True, exist_ok=True)
    extra = [f"<extra_id_{i}>" for i in range(125)]
    hub = TOKENIZERS_DIR / "byt5-hub"
    hub.mkdir()
    (hub / "tokenizer_config.json").write_text(json.dumps(
        {"eos_token": "</s>", "extra_ids": 125, "additional_special_tokens": extra, "model_max_length": 1024,
         "pad_token": "<pad>", "tokenizer_class": "ByT5Tokenizer", "unk_token": "<unk>"}, indent=2))
    (hub / "special_tokens_map.json").write_text(json.dumps(
        {"additional_special_tokens": extra, "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}))
    added = TOKENIZERS_DIR / "byt5-added"
    tok = ByT5Tokenizer()
    tok.add_tokens(["<sep>", "ab c"])
    tok.add_tokens([AddedToken("<L>", lstrip=True), AddedToken("<R>", rstrip=True),
                    AddedToken("<W>", single_word=True)])
    tok.add_tokens(["<special>"], special_tokens=True)
    tok.save_pretrained(str(added))
    extra3 = TOKENIZERS_DIR / "byt5-extra3"
    extra3.mkdir()
    (extra3 / "tokenizer_config.json").write_text(json.dumps({"extra_ids": 3, "tokenizer_class": "ByT5Tokenizer"}))
    return [hub, added, extra3]


def make_model(seed: int) -> dict:
    tok = ByT5Tokenizer()
    assert len(tok) == 384
    mf.LOGIT_SCALE[NAME], mf.EOS_SCALE[NAME], mf.DEC_SUBLAYER_SCALE[NAME] = 2.0, 1.6, 1.0
    spec = dict(config=dict(vocab_size=384, d_model=32, d_kv=8, num_heads=4, d_ff=48, num_layers=2,
                            num_decoder_layers=2, relative_attention_num_buckets=16,
                            relative_attention_max_distance=32, feed_forward_proj="gated-gelu",
                            tie_word_embeddings=False, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
                            dropout_rate=0.1, tokenizer_class="ByT5Tokenizer"),
                tied=False, seed_offset=seed - mf.MODEL_SEED)
    model = mf.build_model(NAME, spec)
    out = mf.MODELS_DIR / NAME
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(str(out))
    assert not (out / "spiece.model").exists()
    tok = AutoTokenizer.from_pretrained(str(out))
    assert type(tok).__name__ == "ByT5Tokenizer"
    m = T5ForConditionalGeneration.from_pretrained(out, dtype=torch.float32).eval()
    m64 = copy.deepcopy(m).to(torch.float64)
    r = mf.Ref(NAME, m, m64, tok, True)
    score, rows, hidden = r.score()
    ref = {"model": NAME, "score": score, "logprob_rows": rows, "encoder_hidden": hidden}
    ref["greedy"] = r.greedy()
    ref["beam"] = r.beam()
    ref["batch"] = r.batch()
    mf.cross_check(m, ref)
    mf.dump_json(mf.REF_DIR / f"{NAME}.json", ref, depth=3)
    return {"class": "T5ForConditionalGeneration + ByT5Tokenizer", "seed": seed,
            "files": sorted(p.name for p in out.iterdir())}


def main():
    made = None
    for seed in range(SEED, SEED + 50):
        try:
            made = make_model(seed)
            break
        except RuntimeError as e:
            mf.log(f"{NAME}: seed {seed} rejected: {e}")
    assert made is not None
    rng = random.Random(SEED)
    layouts = [mf.MODELS_DIR / NAME] + write_layouts()
    reference = {"generator": "tools/make_byt5_fixtures.py",
                 "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
                 "model": made, "layouts": [tokenizer_reference(p, rng) for p in layouts]}
    mf.dump_json(mf.REF_DIR / "byt5-tokenizer.json", reference, depth=3)
    for layout in reference["layouts"]:
        mf.log(f"{layout['directory']}: {len(layout['encode'])} texts, {len(layout['decode'])} id lists, "
               f"size {layout['size']}, sentinels {layout['sentinel_ids'][:3]}...")


if __name__ == "__main__":
    main()
