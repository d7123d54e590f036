#!/usr/bin/env python3
"""Reference embeddings from transformers and sentence-transformers (PyTorch, fp32).

Uses make_fixtures.py's tokenizer (Tests/Fixtures/spm) and the existing fixture checkpoints, and writes:

  Tests/Fixtures/models/t5-encoder-tiny/     T5EncoderModel.save_pretrained of t5v11-gated-gelu's encoder
  Tests/Fixtures/models/umt5-encoder-tiny/   UMT5EncoderModel.save_pretrained of umt5-tiny's encoder
  Tests/Fixtures/models/st-t5-mean/          a sentence-transformers directory as Sentence-T5 is laid out:
                                             Transformer (T5EncoderModel) -> Pooling(mean) -> Dense(no bias,
                                             Identity) -> Normalize
  Tests/Fixtures/models/st-t5-cls/           Transformer -> Pooling(cls) -> Dense(bias, Tanh), no Normalize
  Tests/Fixtures/reference/embeddings.json   per encoder model and text: the ids, last_hidden_state (each text
                                             alone, which equals the masked batch), masked mean, first token,
                                             and the input padded to PAD_TO with pad ids and no attention mask
                                             (as Flux and SD3 feed T5): its last_hidden_state and plain mean;
                                             (the sentence-transformers directories get spiece.model, as hub
                                             copies have, in place of tokenizer.json)
                                             per sentence-transformers directory: SentenceTransformer.encode

Run by hand (needs pip's torch, transformers, sentencepiece, sentence-transformers):
    python3 tools/make_embedding_fixtures.py
"""
from __future__ import annotations

import shutil
import sys
import zlib
from pathlib import Path

import torch
import transformers
from transformers import (T5EncoderModel, T5ForConditionalGeneration, T5Tokenizer, UMT5EncoderModel,
                          UMT5ForConditionalGeneration)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402

PAD_TO = 16
TEXTS = [
    "translate English to German: The house is wonderful.",
    "a",
    "",
    "Numbers 3 1 4 1 5 9 2 6 and words, with punctuation; quotes \"here\".",
    "summarize: the quick brown fox jumps over the lazy dog again and again",
]


def encoder_only(full_cls, enc_cls, source: str, name: str, spiece: bytes) -> Path:
    """Saves the encoder of a fixture checkpoint as its encoder-only class does."""
    full = full_cls.from_pretrained(mf.MODELS_DIR / source, dtype=torch.float32).eval()
    enc = enc_cls(full.config)
    missing, unexpected = enc.load_state_dict(full.state_dict(), strict=False)
    assert not missing, missing
    out = mf.MODELS_DIR / name
    shutil.rmtree(out, ignore_errors=True)
    enc.save_pretrained(out, safe_serialization=True)
    (out / "spiece.model").write_bytes(spiece)
    return out


def encoder_reference(cls, path: Path, tok) -> dict:
    model = cls.from_pretrained(path, dtype=torch.float32).eval()
    cases = []
    with torch.no_grad():
        for text in TEXTS:
            ids = tok(text).input_ids
            hidden = model(input_ids=torch.tensor([ids])).last_hidden_state[0]
            padded = tok(text, padding="max_length", max_length=PAD_TO, truncation=True).input_ids
            unmasked = model(input_ids=torch.tensor([padded])).last_hidden_state[0]
            cases.append({
                "text": text, "ids": ids,
                "hidden": mf.f32list(hidden), "mean": mf.f32list(hidden.mean(0)), "first": mf.f32list(hidden[0]),
                "padded_ids": padded, "padded_hidden": mf.f32list(unmasked), "padded_mean": mf.f32list(unmasked.mean(0)),
            })
        # The masked batch gives each text's own states (checked here, so the fixture's single-text states
        # are also the batch answer).
        batch = tok(TEXTS, padding=True)
        states = model(input_ids=torch.tensor(batch.input_ids),
                       attention_mask=torch.tensor(batch.attention_mask)).last_hidden_state
        for i, case in enumerate(cases):
            n = len(case["ids"])
            assert torch.allclose(states[i, :n], torch.tensor(case["hidden"]), atol=1e-5), "masked batch differs"
    return {"pad_to": PAD_TO, "cases": cases}


def sentence_transformer(name: str, encoder: Path, pooling: str, dense_bias: bool, activation, normalize: bool) -> dict:
    from sentence_transformers import SentenceTransformer, models
    torch.manual_seed(zlib.crc32(name.encode()))
    word = models.Transformer(str(encoder), max_seq_length=12)
    d = word.get_word_embedding_dimension()
    modules = [word, models.Pooling(d, pooling_mode=pooling), models.Dense(d, 24, bias=dense_bias, activation_function=activation)]
    if normalize:
        modules.append(models.Normalize())
    st = SentenceTransformer(modules=modules, device="cpu")
    out = mf.MODELS_DIR / name
    shutil.rmtree(out, ignore_errors=True)
    st.save(str(out), safe_serialization=True)
    # As on the hub (sentence-transformers/sentence-t5-base, gtr-t5-base), the directory carries spiece.model;
    # tokenizer.json (the fast tokenizer's 370 KB copy of it) and the generated README are left out.
    shutil.copy(mf.SPM_DIR / "spiece.model", out / "spiece.model")
    (out / "tokenizer.json").unlink()
    (out / "README.md").unlink()
    loaded = SentenceTransformer(str(out), device="cpu")
    emb = loaded.encode(TEXTS, convert_to_tensor=True, normalize_embeddings=False)
    return {"texts": TEXTS, "max_seq_length": 12, "embeddings": mf.f32list(emb),
            "files": sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())}


def main():
    tok = T5Tokenizer.from_pretrained(str(mf.SPM_DIR))
    spiece = (mf.SPM_DIR / "spiece.model").read_bytes()
    t5 = encoder_only(T5ForConditionalGeneration, T5EncoderModel, "t5v11-gated-gelu", "t5-encoder-tiny", spiece)
    umt5 = encoder_only(UMT5ForConditionalGeneration, UMT5EncoderModel, "umt5-tiny", "umt5-encoder-tiny", spiece)
    ref = {
        "generator": "tools/make_embedding_fixtures.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "encoders": {
            "t5-encoder-tiny": encoder_reference(T5EncoderModel, t5, tok),
            "umt5-encoder-tiny": encoder_reference(UMT5EncoderModel, umt5, tok),
        },
    }
    import sentence_transformers
    ref["versions"]["sentence_transformers"] = sentence_transformers.__version__
    ref["sentence_transformers"] = {
        "st-t5-mean": sentence_transformer("st-t5-mean", t5, "mean", False, torch.nn.Identity(), True),
        "st-t5-cls": sentence_transformer("st-t5-cls", t5, "cls", True, torch.nn.Tanh(), False),
    }
    mf.dump_json(mf.REF_DIR / "embeddings.json", ref, depth=4)
    mf.log("wrote embeddings.json")


if __name__ == "__main__":
    main()
