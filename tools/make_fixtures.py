#!/usr/bin/env python3
"""Regenerate every file under Tests/Fixtures from Hugging Face transformers + PyTorch (fp32, CPU).

Nothing here is ever computed by the Swift project. One run rewrites everything:

    python3 tools/make_fixtures.py

Needs: torch, transformers (5.24.0 was used), sentencepiece, safetensors, numpy.
See Tests/Fixtures/README.md for the output format.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
import safetensors
import safetensors.torch
import transformers
from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration, T5Tokenizer
from transformers.models.t5.modeling_t5 import T5Attention, T5DenseActDense, T5DenseGatedActDense, T5LayerNorm

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "Tests" / "Fixtures"
SPM_DIR = FIX / "spm"
MODELS_DIR = FIX / "models"
REF_DIR = FIX / "reference"

CORPUS_SEED = 20240611   # synthetic corpus + sentencepiece trainer
MODEL_SEED = 1234        # base seed for model initialisation (each variant adds an offset)
SPM_VOCAB = 384
N_EXTRA = 100
GREEDY_MARGIN = 1e-3     # drop greedy cases whose smallest top1-top2 gap is <= this
BEAM_GAP = 1e-4          # drop beam cases with (near) ties in the final ranking

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
transformers.logging.set_verbosity_error()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# JSON helpers: floats are written as repr(float(float32 value)) -> exact, round-trips.
# ----------------------------------------------------------------------------------------------

def f32(x) -> float:
    v = float(np.float32(x))
    if not math.isfinite(v):
        raise ValueError(f"non-finite float in fixture: {v}")
    return v


def f32list(t) -> list:
    if isinstance(t, torch.Tensor):
        t = t.detach().to(torch.float32).cpu().numpy()
    arr = np.asarray(t, dtype=np.float32)
    out = arr.tolist()

    def chk(o):
        if isinstance(o, list):
            for e in o:
                chk(e)
        elif not math.isfinite(o):
            raise ValueError("non-finite float in fixture")
    chk(out)
    return out


def compact(o) -> str:
    return json.dumps(o, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dump_json(path: Path, obj, depth: int = 2):
    """Write JSON with newlines only at the outer `depth` levels; inner values are compact."""

    def enc(o, level):
        if level >= depth or not isinstance(o, (dict, list)) or len(o) == 0:
            return compact(o)
        ind = "\n" + " " * (level + 1)
        if isinstance(o, dict):
            items = [f"{compact(k)}:{enc(v, level + 1)}" for k, v in o.items()]
            return "{" + ind + ("," + ind).join(items) + "\n" + " " * level + "}"
        items = [enc(v, level + 1) for v in o]
        return "[" + ind + ("," + ind).join(items) + "\n" + " " * level + "]"

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(enc(obj, 0) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# 1. SentencePiece model
# ----------------------------------------------------------------------------------------------

def make_corpus(seed: int) -> list[str]:
    r = random.Random(seed)
    subj = ["the dog", "a cat", "my friend", "the teacher", "our house", "the old man", "a small child",
            "the weather", "this book", "the city", "the river", "a student", "the company", "the government",
            "my sister"]
    verb = ["is", "was", "walks to", "likes", "sees", "reads", "finds", "opens", "builds", "visits", "needs",
            "makes"]
    obj = ["the park", "a letter", "the garden", "some water", "the market", "a new car", "the station",
           "the school", "an apple", "the window", "the museum", "a good idea", "the answer", "the door",
           "a long story"]
    adj = ["good", "bad", "happy", "quiet", "beautiful", "large", "small", "red", "green", "fast", "slow", "cold",
           "warm"]
    adv = ["today", "yesterday", "tomorrow", "again", "quickly", "slowly", "every day", "at night",
           "in the morning"]
    de = ["Das ist gut.", "Der Hund läuft schnell.", "Ich möchte ein Glas Wasser.", "Die Straße ist lang.",
          "Wie geht es dir?", "Grüße aus München.", "Das Mädchen liest ein Buch.", "Wir fahren über die Brücke."]
    fr = ["C'est très bien.", "Le garçon mange une pomme.", "Où est la gare?", "Je suis très content.",
          "Un café, s'il vous plaît.", "Noël à Paris.", "La forêt est belle."]
    misc = ["café", "naïve", "résumé", "über", "Straße", "façade", "jalapeño", "coöperate", "Zoë", "São Paulo"]
    cjk = ["你好", "世界", "日本語", "東京", "中文", "こんにちは"]
    emoji = ["🙂", "🚀", "👍", "❤️"]
    prefixes = ["translate English to German: ", "translate English to French: ", "summarize: ",
                "cola sentence: ", "question: ", "stsb sentence1: "]
    words = ("time year people way day man thing woman life child world school state family student group "
             "country problem hand part place case week company system program question work government number "
             "night point home water room mother area money story fact month lot right study book eye job word "
             "business issue side kind head house service friend father power hour game line end member law car "
             "city community name president team minute idea kid body information back parent face others level "
             "office door health person art war history party result change morning reason research girl guy "
             "moment air teacher force education foot boy age policy music market sense nation plan college "
             "interest death experience effect class control report mind weather summer winter spring autumn "
             "bridge river mountain island garden kitchen window table chair letter paper language german english "
             "french translate summarize because through between without important different available possible "
             "together already another remember however although").split()

    def eng():
        s = f"{r.choice(subj)} {r.choice(verb)} {r.choice(obj)}"
        if r.random() < 0.5:
            s += f" {r.choice(adv)}"
        if r.random() < 0.3:
            s = s.replace("the ", f"the {r.choice(adj)} ", 1)
        if r.random() < 0.3:
            s += f" and it is {r.choice(adj)}"
        if r.random() < 0.25:
            s += f" with {r.randint(2, 40)} people"
        return s[0].upper() + s[1:] + r.choice([".", ".", "!", "?"])

    def salad():
        return " ".join(r.choice(words) for _ in range(r.randint(3, 12)))

    lines = []
    for _ in range(6000):
        k = r.random()
        if k < 0.45:
            line = r.choice(prefixes) + eng() + (" " + eng() if r.random() < 0.3 else "")
        elif k < 0.60:
            line = r.choice(de)
        elif k < 0.70:
            line = r.choice(fr)
        elif k < 0.80:
            line = eng() + " " + r.choice(misc) + " " + str(r.randint(0, 99))
        elif k < 0.83:
            line = f"{r.randint(0, 20)} + {r.randint(0, 20)} = {r.randint(0, 40)}"
        elif k < 0.88:
            line = eng() + " " + r.choice(cjk) + r.choice(cjk)
        elif k < 0.91:
            line = eng() + " " + r.choice(emoji)
        elif k < 0.96:
            line = salad().capitalize() + "."
        else:
            line = eng()
        lines.append(line)
    # a few rare characters that fall outside character_coverage and become <unk>
    lines += ["龍 rare", "🦄 rare", "Ω rare"]
    return lines


SPM_TRAINER_ARGS = dict(
    model_type="unigram", vocab_size=SPM_VOCAB,
    pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
    pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
    character_coverage=0.9995, normalization_rule_name="nmt_nfkc",
    num_threads=1, minloglevel=2,
)


def train_spm() -> bytes:
    lines = make_corpus(CORPUS_SEED)
    spm.set_random_generator_seed(CORPUS_SEED)
    w = io.BytesIO()
    # sentence_iterator + model_writer: nothing path-dependent ends up in the model proto.
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=w, **SPM_TRAINER_ARGS)
    return w.getvalue()


# ----------------------------------------------------------------------------------------------
# 2. Tokenizer answers
# ----------------------------------------------------------------------------------------------

ENCODE_TEXTS = [
    # plain ASCII / task prefixes
    "Hello world",
    "The dog walks to the park.",
    "translate English to German: The house is wonderful.",
    "summarize: The teacher reads a long story in the morning and the children listen quietly.",
    "cola sentence: The book was good!",
    "question: Where is the station? context: The station is near the river.",
    "It's 12 + 7 = 19, isn't it?",
    "2024-06-11 3.14159 1,000,000",
    # NFKC
    "ＡＢＣ１２３",
    "Ｈｅｌｌｏ\u3000ｗｏｒｌｄ",
    "the ﬁnal ﬂight",
    "① ② ⑩",
    "a\u00a0b\u00a0\u00a0c",
    "cafe\u0301 café",
    "™ … ½ ㎏",
    # accents, CJK, emoji, unseen
    "Grüße aus München, Straße",
    "你好世界 こんにちは",
    "东京 龍 ",
    "emoji 🙂🙂 🚀 👍🏽",
    "xylophone quizzically vexed",
    "Ω ω Ωmega",
    # whitespace
    "tab\there\nnew line\r\nend",
    "lots   of    spaces",
    "   leading and trailing   ",
    "",
    " ",
    "\t\n",
    "x\u200by",
    # sentinels and special tokens in text
    "x <extra_id_0><extra_id_1> y",
    "<extra_id_0> hello <extra_id_1>",
    "a<extra_id_5>b",
    "<extra_id_99>",
    "The <extra_id_0> walks in <extra_id_1> park",
    "word<extra_id_0>word  <extra_id_1>  end",
    "<extra_id_100> is not a sentinel",
    "<EXTRA_ID_0>",
    "text with </s> and <pad> and <unk> inside",
    "</s></s>",
    "＜extra_id_0＞ full-width brackets",
    "a＜/s＞b",
    # known HF-vs-sentencepiece differences outside the special-token story
    "x\u0085y",
    "cafe\u0301\u200d!",
    "👨\u200d👩\u200d👧 family",
]

SPECIAL_LITERALS = ["<pad>", "</s>", "<unk>"] + [f"<extra_id_{i}>" for i in range(N_EXTRA)]


def segmented_sentencepiece(tok, sp, text: str) -> list[int]:
    """Split `text` at literal special tokens (longest match first), run plain sentencepiece Encode on each
    remaining segment, concatenate, append </s>. This is the recipe a C++ SentencePiece port can follow."""
    import re
    pat = re.compile("|".join(re.escape(t) for t in sorted(SPECIAL_LITERALS, key=len, reverse=True)))
    out, pos = [], 0
    for m in pat.finditer(text):
        out += sp.encode(text[pos:m.start()])
        out.append(tok.convert_tokens_to_ids(m.group()))
        pos = m.end()
    out += sp.encode(text[pos:])
    return out + [1]


def tokenizer_fuzz(tok, sp, n=20000) -> dict:
    """Random strings (no U+0085, no U+200D): how often HF differs from the segmented sentencepiece recipe."""
    r = random.Random(CORPUS_SEED)
    alphabet = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?'-+=") + [
        " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u200b", "é", "e\u0301", "ü", "ß", "Ａ", "１", "ﬁ", "①",
        "你", "好", "龍", "🙂", "🦄", "<extra_id_0>", "<extra_id_7>", "</s>", "<pad>", "<unk>", "<", ">", "_", "＜",
        "＞", "Ω", "™", "½", "\r\n", "\u2028", "\x0b", "\x0c", "\x00", "\x01", "\ufeff", "\u00ad"]
    bad = []
    for _ in range(n):
        t = "".join(r.choice(alphabet) for _ in range(r.randint(0, 25)))
        if tok(t).input_ids != segmented_sentencepiece(tok, sp, t):
            bad.append(t)
    return {"strings": n, "mismatches": len(bad), "first_mismatches": bad[:5]}


def make_tokenizer_reference(tok, sp) -> dict:
    encode = []
    for text in ENCODE_TEXTS:
        ids = tok(text).input_ids
        pieces = tok.convert_ids_to_tokens(ids)
        sp_ids = segmented_sentencepiece(tok, sp, text)
        encode.append({"text": text, "ids": ids, "pieces": pieces, "sentencepiece_ids": sp_ids,
                       "matches_sentencepiece": ids == sp_ids})

    n = len(tok)
    s = lambda i: n - 1 - i  # <extra_id_i>
    piece = lambda p: tok.convert_tokens_to_ids(p)
    decode_ids = [
        tok("Hello world").input_ids,
        tok("translate English to German: The dog walks.").input_ids,
        tok("The <extra_id_0> walks in <extra_id_1> park").input_ids,
        tok("Grüße aus München, Straße").input_ids,
        tok("ＡＢＣ１２３ café").input_ids,
        [s(0), piece("▁a"), s(1), piece("▁b"), s(2), 1],
        [s(0), piece("s"), piece("▁a")],
        [piece("▁a"), s(5), piece("s")],
        [0, 0, piece("▁a"), 1, piece("▁b"), 1, 0],
        [2, piece("▁a"), 2, piece("▁b"), 2],
        [piece("▁")],
        [piece("▁"), piece("▁"), piece("▁")],
        [piece("▁"), piece("▁a")],
        [piece("▁a"), piece("▁"), piece("▁b")],
        [piece("s"), piece("e"), piece("▁a")],
        [piece("▁Th"), piece("e"), piece("▁do"), piece("g"), piece("."), piece("▁is"), piece("!")],
        [s(99), s(50), s(0)],
        [0, 1, 2],
        [],
        [piece("▁"), piece("你"), piece("好"), piece("▁"), piece("é"), piece("▁café")],
        [1, piece("▁a")],
        [piece("▁12"), piece("▁+"), piece("▁7")] if piece("▁+") not in (None, 2) else [piece("▁12"), piece("+")],
    ]
    decode = []
    for ids in decode_ids:
        assert all(isinstance(i, int) and 0 <= i < n for i in ids), ids
        decode.append({"ids": ids, "text": tok.decode(ids, skip_special_tokens=True),
                       "pieces": tok.convert_ids_to_tokens(ids)})
    return {"tokenizer_size": n, "sentencepiece_size": sp.get_piece_size(), "encode": encode, "decode": decode}


# ----------------------------------------------------------------------------------------------
# 3. Tiny checkpoints
# ----------------------------------------------------------------------------------------------

def variant_specs(tok_size: int) -> dict:
    common = dict(decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, dropout_rate=0.1)
    return {
        "t5-relu-tied": dict(
            config=dict(vocab_size=tok_size + 28, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2,
                        num_decoder_layers=2, relative_attention_num_buckets=32,
                        relative_attention_max_distance=128, feed_forward_proj="relu", tie_word_embeddings=True,
                        **common),
            tied=True, storage="F32", layout="save_pretrained", seed_offset=0),
        "t5v11-gated-gelu": dict(
            config=dict(vocab_size=tok_size, d_model=32, d_kv=6, num_heads=4, d_ff=48, num_layers=2,
                        num_decoder_layers=3, relative_attention_num_buckets=16,
                        relative_attention_max_distance=20, layer_norm_epsilon=1e-5,
                        feed_forward_proj="gated-gelu", tie_word_embeddings=False, **common),
            tied=False, storage="F32", layout="save_pretrained", seed_offset=1),
        "t5-gated-silu-bf16": dict(
            config=dict(vocab_size=tok_size, d_model=48, d_kv=16, num_heads=3, d_ff=80, num_layers=2,
                        num_decoder_layers=2, relative_attention_num_buckets=32,
                        relative_attention_max_distance=64, feed_forward_proj="gated-silu",
                        tie_word_embeddings=False, **common),
            tied=False, storage="BF16", layout="save_pretrained_sharded", seed_offset=2),
        "t5-gelu-f16-legacy": dict(
            config=dict(vocab_size=tok_size, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2,
                        num_decoder_layers=2, relative_attention_num_buckets=32,
                        relative_attention_max_distance=128, feed_forward_proj="gelu", tie_word_embeddings=True,
                        **common),
            tied=True, storage="F16", layout="legacy_single_file_with_aliases", seed_offset=3),
    }


# How the random weights are shaped after the standard T5 init (documented in manifest.json).
SHAPING = {
    "base_init": "T5PreTrainedModel._init_weights with initializer_factor=1.0 (torch.manual_seed(seed))",
    "layer_norm_weights": "every T5LayerNorm weight re-drawn uniform(0.6, 1.4) so a missing/misplaced norm weight "
                          "is visible",
    "encoder_relative_attention_bias": "re-drawn normal(0, 2.0) so the bucket index matters",
    "decoder_relative_attention_bias": "re-drawn normal(0, 1.5), plus +6.0 at bucket h+1 for head h (each head "
                                       "prefers the token h+1 positions back: history-dependent, non-degenerate "
                                       "generation)",
    "query": "every q weight multiplied by 1.5 (sharper attention)",
    "decoder_sublayer_scale": "decoder attention o weights and feed-forward wo weights multiplied by "
                              "decoder_sublayer_scale (tied models: the sublayers must dominate the input embedding, "
                              "otherwise the tied head keeps predicting the previous token)",
    "lm_logit_scale": "decoder.final_layer_norm weight multiplied by logit_scale (wide argmax margins)",
    "lm_head_untied": "untied variants: lm_head.weight is a separate normal(0, 1) tensor (untied from shared)",
    "eos_row": "the eos (id 1) row of the output projection (lm_head, or shared for tied models) multiplied by "
               "eos_scale so that some generations end with </s>",
    "pad_row": "the pad (id 0) row of the output projection multiplied by 0.1 so <pad> (also the decoder start token) "
               "is never generated as a real token (a generated pad would be ambiguous after stripping padding)",
}
LOGIT_SCALE = {"t5-relu-tied": 5.0, "t5v11-gated-gelu": 2.0, "t5-gated-silu-bf16": 2.0, "t5-gelu-f16-legacy": 5.0}
EOS_SCALE = {"t5-relu-tied": 2.0, "t5v11-gated-gelu": 1.6, "t5-gated-silu-bf16": 1.6, "t5-gelu-f16-legacy": 2.0}
DEC_SUBLAYER_SCALE = {"t5-relu-tied": 10.0, "t5v11-gated-gelu": 1.0, "t5-gated-silu-bf16": 1.0,
                      "t5-gelu-f16-legacy": 10.0}


def build_model(name: str, spec: dict) -> T5ForConditionalGeneration:
    torch.manual_seed(MODEL_SEED + spec["seed_offset"])
    cfg = T5Config(**spec["config"])
    model = T5ForConditionalGeneration(cfg)
    g = torch.Generator().manual_seed(MODEL_SEED * 10 + spec["seed_offset"])
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, T5LayerNorm):
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=g) * 0.8 + 0.6)
            if isinstance(mod, T5Attention):
                mod.q.weight.mul_(1.5)
        enc_bias = model.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight
        enc_bias.copy_(torch.randn(enc_bias.shape, generator=g) * 2.0)
        dec_bias = model.decoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight
        dec_bias.copy_(torch.randn(dec_bias.shape, generator=g) * 1.5)
        for h in range(dec_bias.shape[1]):
            dec_bias[h + 1, h] += 6.0
        for mod in model.decoder.modules():
            if isinstance(mod, T5Attention):
                mod.o.weight.mul_(DEC_SUBLAYER_SCALE[name])
            if isinstance(mod, (T5DenseActDense, T5DenseGatedActDense)):
                mod.wo.weight.mul_(DEC_SUBLAYER_SCALE[name])
        model.decoder.final_layer_norm.weight.mul_(LOGIT_SCALE[name])
        if spec["tied"]:
            assert model.lm_head.weight is model.shared.weight
            model.shared.weight[1].mul_(EOS_SCALE[name])
            model.shared.weight[0].mul_(0.1)
        else:
            w = torch.randn(model.lm_head.weight.shape, generator=g)
            w[1].mul_(EOS_SCALE[name])
            w[0].mul_(0.1)
            model.lm_head.weight = torch.nn.Parameter(w)
            assert model.lm_head.weight is not model.shared.weight
    return model.eval()


def save_variant(name: str, spec: dict, model, out_dir: Path, spiece_bytes: bytes) -> dict:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    info = {"layout": spec["layout"], "storage_dtype": spec["storage"]}
    if spec["layout"] == "save_pretrained":
        model.save_pretrained(out_dir, safe_serialization=True)
    elif spec["layout"] == "save_pretrained_sharded":
        model.to(torch.bfloat16).save_pretrained(out_dir, safe_serialization=True, max_shard_size="60KB")
        model.to(torch.float32)
    elif spec["layout"] == "legacy_single_file_with_aliases":
        sd = {}
        for k, v in model.state_dict().items():
            sd[k] = v.detach().to(torch.float16).clone().contiguous()
        shared = sd["shared.weight"]
        for alias in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"):
            sd[alias] = shared.clone()
        sd = dict(sorted(sd.items()))
        safetensors.torch.save_file(sd, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
        c = spec["config"]
        old_cfg = {
            "architectures": ["T5ForConditionalGeneration"],
            "d_ff": c["d_ff"], "d_kv": c["d_kv"], "d_model": c["d_model"],
            "decoder_start_token_id": 0, "dropout_rate": c["dropout_rate"], "eos_token_id": 1,
            "feed_forward_proj": c["feed_forward_proj"], "initializer_factor": 1.0, "is_encoder_decoder": True,
            "layer_norm_epsilon": 1e-06, "model_type": "t5", "n_positions": 512,
            "num_decoder_layers": c["num_decoder_layers"], "num_heads": c["num_heads"],
            "num_layers": c["num_layers"], "output_past": True, "pad_token_id": 0,
            "relative_attention_max_distance": c["relative_attention_max_distance"],
            "relative_attention_num_buckets": c["relative_attention_num_buckets"],
            "torch_dtype": "float16", "use_cache": True, "vocab_size": c["vocab_size"],
        }
        (out_dir / "config.json").write_text(json.dumps(old_cfg, indent=2, sort_keys=True) + "\n")
        info["note"] = ("written with safetensors.torch.save_file (not save_pretrained): contains shared.weight plus "
                        "the aliases encoder.embed_tokens.weight, decoder.embed_tokens.weight, lm_head.weight (all "
                        "equal to shared); config.json in the old hub style without scale_decoder_outputs and "
                        "without tie_word_embeddings; no generation_config.json")
    else:
        raise ValueError(spec["layout"])
    (out_dir / "spiece.model").write_bytes(spiece_bytes)
    files = sorted(p.name for p in out_dir.iterdir())
    info["files"] = files
    # record the tensor names/dtypes actually stored
    tensors = {}
    for fn in files:
        if fn.endswith(".safetensors"):
            with safetensors.safe_open(str(out_dir / fn), "pt") as f:
                for k in f.keys():
                    sl = f.get_slice(k)
                    tensors[k] = {"file": fn, "dtype": sl.get_dtype(), "shape": list(sl.get_shape())}
    info["tensors"] = dict(sorted(tensors.items()))
    cfg_json = json.loads((out_dir / "config.json").read_text())
    info["config_json"] = cfg_json
    info["config_json_has_scale_decoder_outputs"] = "scale_decoder_outputs" in cfg_json
    info["config_json_scale_decoder_outputs"] = cfg_json.get("scale_decoder_outputs", "ABSENT")
    info["config_json_tie_word_embeddings"] = cfg_json.get("tie_word_embeddings", "ABSENT")
    if (out_dir / "generation_config.json").exists():
        info["generation_config_json"] = json.loads((out_dir / "generation_config.json").read_text())
    if (out_dir / "model.safetensors.index.json").exists():
        info["index_json"] = json.loads((out_dir / "model.safetensors.index.json").read_text())
    return info


def load_variant(out_dir: Path):
    m, info = T5ForConditionalGeneration.from_pretrained(out_dir, dtype=torch.float32, output_loading_info=True)
    m.eval()
    info = {k: sorted(str(x) for x in v) for k, v in info.items()}
    return m, info


# ----------------------------------------------------------------------------------------------
# 4. Reference answers
# ----------------------------------------------------------------------------------------------

SCORE_CASES = [
    ("translate English to German: The dog walks to the park.", "Der Hund läuft schnell."),
    ("summarize: The old man reads a long story in the morning and the city is quiet.", "The old man reads."),
    ("The <extra_id_0> walks in <extra_id_1> park", "<extra_id_0> cute dog <extra_id_1> the <extra_id_2>"),
    ("cola sentence: The book is good.", ""),
    ("summarize: My friend visits the museum every day. The weather is cold and the river is slow.",
     "My friend visits the museum every day and the weather is cold. The river is slow, the city is quiet "
     "and the teacher reads a long story to 12 happy children in the morning."),
    ("question: Where is the station? context: The station is near the river.", "near the river"),
]

GEN_INPUTS = [
    "translate English to German: The dog walks to the park.",
    "summarize: The teacher reads a long story in the morning and the children listen.",
    "The <extra_id_0> walks in <extra_id_1> park",
    "translate English to French: My sister likes the green garden.",
    "cola sentence: The city was quiet at night.",
    "question: Where is the market? context: The market is near the old bridge.",
    "My friend <extra_id_0> the museum <extra_id_1> day.",
    "summarize: The company builds a new car and the government needs a good idea.",
    "stsb sentence1: A small child opens the door. sentence2: The child opens a door.",
    "translate English to German: The weather is cold today.",
    "Grüße aus München <extra_id_0> Straße",
    "summarize: 12 + 7 = 19",
    "The old man <extra_id_0> a letter <extra_id_1> the river <extra_id_2>",
    "translate English to French: The student reads this book again.",
    "cola sentence: Our house is large and warm.",
    "question: What does the cat see? context: The cat sees an apple.",
    "summarize: The river is slow and the weather is warm. The children visit the garden again and again.",
    "translate English to German: My friend likes the old museum.",
    "<extra_id_0> the <extra_id_1> the <extra_id_2> the <extra_id_3>",
    "cola sentence: The green window opens slowly every day.",
]

GREEDY_PLAN = [
    # (label, max_new_tokens, min_new_tokens, repetition_penalty, no_repeat_ngram_size)
    ("plain-a", 40, 0, 1.0, 0),
    ("plain-b", 48, 0, 1.0, 0),
    ("plain-c", 40, 0, 1.0, 0),
    ("min_new_tokens", 40, None, 1.0, 0),   # None: chosen to forbid the early eos of the plain run
    ("repetition_penalty", 40, 0, 1.3, 0),
    ("no_repeat_2", 40, 0, 1.0, 2),
    ("no_repeat_3", 64, 0, 1.0, 3),
    ("combined", 40, 6, 1.3, 3),
]

BEAM_PLAN = [
    # (num_beams, length_penalty, early_stopping, num_return_sequences, max_new_tokens, min_new_tokens)
    (2, 1.0, False, 1, 30, 0),
    (3, 0.6, True, 3, 30, 0),
    (4, 2.0, "never", 2, 30, 0),
    (4, 1.0, True, 4, 25, 0),
    (3, 1.0, "never", 1, 40, 0),
    (2, 0.6, False, 2, 30, 8),
    (4, 2.0, False, 3, 20, 0),
    (3, 0.6, "never", 2, 35, 5),
]

BATCH_PLAN = [
    (["translate English to German: The dog walks to the park.", "summarize: 12 + 7 = 19",
      "The <extra_id_0> walks in <extra_id_1> park"], 30),
    (["cola sentence: The city was quiet at night.", "My friend <extra_id_0> the museum <extra_id_1> day.",
      "question: Where is the market? context: The market is near the old bridge and the river.",
      "Grüße aus München <extra_id_0> Straße"], 30),
]


def strip_generated(row: list[int]) -> list[int]:
    """Generated ids without the decoder start token, cut after the first eos."""
    row = row[1:]
    if 1 in row:
        row = row[: row.index(1) + 1]
    return row


class Ref:
    def __init__(self, name, model, model64, tok, use_cache):
        self.name = name
        self.model = model
        self.model64 = model64
        self.tok = tok
        self.use_cache = use_cache

    def ids(self, text):
        return self.tok(text).input_ids

    # -- teacher forcing ------------------------------------------------------------------------
    def score(self):
        cases = []
        first = None
        for inp, tgt in SCORE_CASES:
            x = self.ids(inp)
            y = self.ids(tgt)
            with torch.no_grad():
                out = self.model(input_ids=torch.tensor([x]), attention_mask=torch.ones(1, len(x), dtype=torch.long),
                                 labels=torch.tensor([y]))
            lp = torch.log_softmax(out.logits[0].float(), dim=-1)
            picked = lp.gather(1, torch.tensor(y)[:, None])[:, 0]
            cases.append({"input": inp, "target": tgt, "input_ids": x, "target_ids": y,
                          "logprobs": f32list(picked), "total": f32(picked.sum().item())})
            if first is None:
                first = (x, y, lp, out.encoder_last_hidden_state[0])
        assert any(len(c["target_ids"]) >= 40 for c in cases)
        assert any(c["target_ids"] == [1] for c in cases)
        x, y, lp, enc = first
        rows = {"input_ids": x, "target_ids": y, "rows": f32list(lp)}
        hidden = {"input_ids": x, "values": f32list(enc)}
        return cases, rows, hidden

    # -- generation helpers ---------------------------------------------------------------------
    def gen(self, model, input_ids, attention_mask, **kw):
        with torch.no_grad():
            return model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False,
                                  output_scores=True, return_dict_in_generate=True, use_cache=self.use_cache,
                                  **kw)

    def greedy_one(self, text, max_new, min_new, rep, ngram):
        x = self.ids(text)
        kw = dict(num_beams=1, max_new_tokens=max_new, min_new_tokens=min_new, repetition_penalty=rep,
                  no_repeat_ngram_size=ngram)
        ii = torch.tensor([x])
        am = torch.ones_like(ii)
        out = self.gen(self.model, ii, am, **kw)
        seq = out.sequences[0].tolist()
        ids = strip_generated(seq)
        n = len(ids)
        margins = []
        for t in range(n):
            top2 = torch.topk(out.scores[t][0], 2).values
            margins.append((top2[0] - top2[1]).item())
        ts = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)[0][:n]
        score = ts.sum().item()
        out64 = self.gen(self.model64, ii, am, **kw)
        same64 = strip_generated(out64.sequences[0].tolist()) == ids
        return {"input": text, "input_ids": x, "max_new_tokens": max_new, "min_new_tokens": min_new,
                "repetition_penalty": rep, "no_repeat_ngram_size": ngram, "ids": ids, "score": f32(score),
                "min_margin": f32(min(margins))}, same64

    def greedy(self):
        cases = []
        used = set()
        plain_cache = {}

        def plain(text):
            if text not in plain_cache:
                plain_cache[text] = self.greedy_one(text, 40, 0, 1.0, 0)
            return plain_cache[text]

        for label, max_new, min_new, rep, ngram in GREEDY_PLAN:
            chosen = None
            # unused inputs first; an input may be reused by a later plan if nothing else works
            for text in [t for t in GEN_INPUTS if t not in used] + [t for t in GEN_INPUTS if t in used]:
                base, base_ok = plain(text)
                if label == "min_new_tokens":
                    # needs an input whose plain greedy run ends with eos early
                    if not (base["ids"] and base["ids"][-1] == 1 and len(base["ids"]) <= 30):
                        continue
                    mn = len(base["ids"]) + 4
                    case, ok = self.greedy_one(text, max_new, mn, rep, ngram)
                else:
                    case, ok = self.greedy_one(text, max_new, min_new, rep, ngram)
                if not ok or case["min_margin"] <= GREEDY_MARGIN:
                    log(f"  [{self.name}] greedy {label}: drop {text[:40]!r} margin={case['min_margin']:.2e} same64={ok}")
                    continue
                if label in ("repetition_penalty", "no_repeat_2", "no_repeat_3", "combined", "min_new_tokens") \
                        and case["ids"] == base["ids"][: len(case["ids"])] and len(case["ids"]) <= len(base["ids"]):
                    log(f"  [{self.name}] greedy {label}: {text[:40]!r} same as plain, try another")
                    continue
                if len(set(case["ids"])) < 3 and case["ids"][-1:] != [1]:
                    log(f"  [{self.name}] greedy {label}: {text[:40]!r} degenerate {case['ids']}")
                    continue
                ends_eos = case["ids"][-1:] == [1]
                if label == "plain-a" and not (ends_eos and len(case["ids"]) >= 6):
                    continue  # want: a plain run that stops with </s> after a few tokens
                if label == "plain-b" and ends_eos:
                    continue  # want: a plain run that hits max_new_tokens
                chosen = case
                break
            if chosen is None:
                raise RuntimeError(f"{self.name}: no robust greedy input for {label}")
            used.add(chosen["input"])
            cases.append(chosen)
        return cases

    def beam_one(self, text, nb, lp, es, nrs, max_new, min_new):
        x = self.ids(text)
        ii = torch.tensor([x])
        am = torch.ones_like(ii)
        kw = dict(num_beams=nb, length_penalty=lp, early_stopping=es, max_new_tokens=max_new,
                  min_new_tokens=min_new)
        out = self.gen(self.model, ii, am, num_return_sequences=nrs, **kw)
        outputs = [{"ids": strip_generated(s), "score": f32(v)}
                   for s, v in zip(out.sequences.tolist(), out.sequences_scores.tolist())]
        # robustness: all num_beams finished hypotheses must be well separated, and fp64 must agree
        full = self.gen(self.model, ii, am, num_return_sequences=nb, **kw)
        allscores = [v for v in full.sequences_scores.tolist() if v > -1e8]
        gaps = [a - b for a, b in zip(allscores, allscores[1:])]
        min_gap = min(gaps) if gaps else float("inf")
        full64 = self.gen(self.model64, ii, am, num_return_sequences=nb, **kw)
        ids32 = [strip_generated(s) for s in full.sequences.tolist()]
        ids64 = [strip_generated(s) for s in full64.sequences.tolist()]
        sc_ok = all(abs(a - b) < 1e-4 for a, b in zip(full.sequences_scores.tolist(),
                                                        full64.sequences_scores.tolist()))
        ok = ids32 == ids64 and sc_ok and min_gap > BEAM_GAP
        ok = ok and [o["ids"] for o in outputs] == ids32[:nrs]
        for o in outputs:
            if 0 in o["ids"]:
                ok = False  # a generated pad would be ambiguous after stripping
        return {"input": text, "input_ids": x, "num_beams": nb, "length_penalty": lp, "early_stopping": es,
                "num_return_sequences": nrs, "max_new_tokens": max_new, "min_new_tokens": min_new,
                "outputs": outputs, "steps": len(out.scores)}, ok, min_gap

    def beam(self):
        cases = []
        start = 0
        for i, (nb, lp, es, nrs, max_new, min_new) in enumerate(BEAM_PLAN):
            chosen = None
            # first pass: for min_new_tokens plans, insist that min_new_tokens changes the result
            for must_bite in ([True, False] if min_new else [False]):
                for k in range(len(GEN_INPUTS)):
                    text = GEN_INPUTS[(start + k) % len(GEN_INPUTS)]
                    case, ok, gap = self.beam_one(text, nb, lp, es, nrs, max_new, min_new)
                    if not ok:
                        log(f"  [{self.name}] beam {i}: drop {text[:40]!r} gap={gap:.2e}")
                        continue
                    if must_bite:
                        c0, _, _ = self.beam_one(text, nb, lp, es, nrs, max_new, 0)
                        if c0["outputs"] == case["outputs"]:
                            continue
                    chosen = case
                    start = (start + k + 1) % len(GEN_INPUTS)
                    break
                if chosen is not None:
                    break
            if chosen is None:
                raise RuntimeError(f"{self.name}: no robust beam input for plan {i}")
            cases.append(chosen)
        return cases

    def batch(self):
        cases = []
        for texts, max_new in BATCH_PLAN:
            enc = self.tok(texts, padding=True, return_tensors="pt")
            ii, am = enc.input_ids, enc.attention_mask
            out = self.gen(self.model, ii, am, num_beams=1, max_new_tokens=max_new)
            rows = [strip_generated(s) for s in out.sequences.tolist()]
            for b, r in enumerate(rows):
                for t in range(len(r)):
                    top2 = torch.topk(out.scores[t][b], 2).values
                    m = (top2[0] - top2[1]).item()
                    if m <= GREEDY_MARGIN:
                        raise RuntimeError(f"{self.name}: batch row {b} margin {m}")
                if 0 in r:
                    raise RuntimeError(f"{self.name}: batch row {b} generated pad")
            out64 = self.gen(self.model64, ii, am, num_beams=1, max_new_tokens=max_new)
            if [strip_generated(s) for s in out64.sequences.tolist()] != rows:
                raise RuntimeError(f"{self.name}: batch fp64 mismatch")
            input_ids = [[i for i, m in zip(r, mr) if m] for r, mr in zip(ii.tolist(), am.tolist())]
            # input_ids as fed: padded rows (right padding with 0) + attention mask
            cases.append({"inputs": texts, "input_ids": ii.tolist(), "attention_mask": am.tolist(),
                          "max_new_tokens": max_new, "ids": rows})
            assert all(self.ids(t) == u for t, u in zip(texts, input_ids))
        return cases


# ----------------------------------------------------------------------------------------------
# Independent re-implementations of greedy and beam search (plain loops over full-prefix forward passes).
# They are NOT used to produce any fixture value: they only assert that our reading of transformers'
# generation/utils.py (documented in the README) reproduces every recorded greedy and beam answer.
# ----------------------------------------------------------------------------------------------

def _next_logits(model, enc_out, x_len, prefix):
    with torch.no_grad():
        out = model(encoder_outputs=(enc_out,), attention_mask=torch.ones(1, x_len, dtype=torch.long),
                    decoder_input_ids=torch.tensor([prefix]), use_cache=False)
    return out.logits[0, -1].to(torch.float32)


def _process(scores, prefix, rep, ngram, min_new, n_generated):
    """Logits processors in transformers' order: repetition penalty, no-repeat-ngram, min length.
    `prefix` is the whole decoder sequence so far INCLUDING the decoder start token 0."""
    scores = scores.clone()
    if rep != 1.0:
        idx = torch.tensor(sorted(set(prefix)))
        v = scores[idx]
        scores[idx] = torch.where(v < 0, v * rep, v / rep)
    if ngram and len(prefix) >= ngram:
        tail = prefix[len(prefix) - ngram + 1:]
        for i in range(len(prefix) - ngram + 1):
            if prefix[i:i + ngram - 1] == tail:
                scores[prefix[i + ngram - 1]] = -float("inf")
    if n_generated < min_new:
        scores[1] = -float("inf")
    return scores


def reference_greedy(model, x, max_new, min_new, rep, ngram):
    ii = torch.tensor([x])
    with torch.no_grad():
        enc = model.encoder(input_ids=ii, attention_mask=torch.ones_like(ii)).last_hidden_state
    prefix, total = [0], 0.0
    for step in range(max_new):
        scores = _process(_next_logits(model, enc, len(x), prefix), prefix, rep, ngram, min_new, step)
        t = int(torch.argmax(scores))
        total += torch.log_softmax(scores, -1)[t].item()   # compute_transition_scores(normalize_logits=True)
        prefix.append(t)
        if t == 1:
            break
    return prefix[1:], total


def reference_beam(model, x, nb, lp, es, nrs, max_new, min_new):
    ii = torch.tensor([x])
    with torch.no_grad():
        enc = model.encoder(input_ids=ii, attention_mask=torch.ones_like(ii)).last_hidden_state
    NEG = -1.0e9
    max_length = max_new + 1                     # decoder prompt = [decoder_start_token_id]
    run_seqs = [[0] for _ in range(nb)]
    run_scores = torch.tensor([0.0] + [NEG] * (nb - 1))
    fin_seqs = [None] * nb
    fin_scores = torch.full((nb,), NEG)
    fin_done = torch.zeros(nb, dtype=torch.bool)
    unsatisfied = True                           # "is_early_stop_heuristic_unsatisfied"
    cur_len = 1
    while True:
        rows = []
        for b in range(nb):
            lp_b = torch.log_softmax(_next_logits(model, enc, len(x), run_seqs[b]), -1)   # log_softmax FIRST
            lp_b = _process(lp_b, run_seqs[b], 1.0, 0, min_new, cur_len - 1)            # then processors
            rows.append(lp_b + run_scores[b])
        acc = torch.stack(rows).reshape(-1)
        V = rows[0].shape[0]
        k = 2 * nb
        top_scores, top_idx = torch.topk(acc, k)
        cand = [(run_seqs[int(i) // V] + [int(i) % V]) for i in top_idx]
        hits = torch.tensor([c[-1] == 1 or cur_len + 1 >= max_length for c in cand])
        # next running beams: best nb candidates that did not stop
        r_scores = top_scores + hits.to(torch.float32) * NEG
        sel = torch.topk(r_scores, nb)[1]
        new_run_seqs = [cand[int(i)] for i in sel]
        new_run_scores = r_scores[sel]
        # finished hypotheses: only stopped candidates among the first nb of the 2*nb
        f = top_scores / ((cur_len + 1 - 1) ** lp)
        if bool(fin_done.all()) and es is True:
            f = f + NEG
        if not unsatisfied:
            f = f + NEG
        eligible = hits & (torch.arange(k) < nb)
        f = f + (~eligible).to(torch.float32) * NEG
        m_scores = torch.cat([fin_scores, f])
        m_seqs = fin_seqs + cand
        m_done = torch.cat([fin_done, eligible])
        keep = torch.topk(m_scores, nb)[1]
        fin_scores, fin_seqs, fin_done = m_scores[keep], [m_seqs[int(i)] for i in keep], m_done[keep]
        run_seqs, run_scores = new_run_seqs, new_run_scores
        cur_len += 1
        hyp_len = (max_length - 1) if (es == "never" and lp > 0.0) else (cur_len - 1)
        best_possible = run_scores[0] / (hyp_len ** lp)
        worst = torch.where(fin_done, fin_scores.min(), torch.tensor(NEG))
        unsatisfied = unsatisfied and bool((best_possible > worst).any())
        if not unsatisfied or (bool(fin_done.all()) and es is True) or bool(hits.all()):
            break
    return [(fin_seqs[i][1:], fin_scores[i].item()) for i in range(nrs)]


def cross_check(model, ref: dict):
    for c in ref["greedy"]:
        ids, total = reference_greedy(model, c["input_ids"], c["max_new_tokens"], c["min_new_tokens"],
                                      c["repetition_penalty"], c["no_repeat_ngram_size"])
        assert ids == c["ids"], (c, ids)
        assert abs(total - c["score"]) < 1e-3 * max(1.0, abs(total)), (total, c["score"])
    for c in ref["beam"]:
        outs = reference_beam(model, c["input_ids"], c["num_beams"], c["length_penalty"], c["early_stopping"],
                              c["num_return_sequences"], c["max_new_tokens"], c["min_new_tokens"])
        got = [o[0] for o in outs]
        want = [o["ids"] for o in c["outputs"]]
        # transformers cuts a hypothesis after its eos; ours never extends past it either
        assert got == want, (c["input"], got, want)
        for (g, sc), o in zip(outs, c["outputs"]):
            assert abs(sc - o["score"]) < 1e-4, (sc, o["score"])


def generation_config_report(model) -> dict:
    gc = model.generation_config
    d = gc.to_diff_dict() if hasattr(gc, "to_diff_dict") else gc.to_dict()
    return {k: v for k, v in d.items() if k != "transformers_version"}


# ----------------------------------------------------------------------------------------------
# 5. Buckets
# ----------------------------------------------------------------------------------------------

def make_buckets():
    rel = torch.arange(-300, 301, dtype=torch.long)
    out = []
    for bidir, nb, md in [(True, 32, 128), (False, 32, 128), (True, 16, 20), (False, 16, 20), (True, 8, 16),
                          (False, 8, 16)]:
        b = T5Attention._relative_position_bucket(rel, bidirectional=bidir, num_buckets=nb, max_distance=md)
        out.append({"bidirectional": bidir, "num_buckets": nb, "max_distance": md,
                    "relative_positions": rel.tolist(), "buckets": b.tolist()})
    return out


# ----------------------------------------------------------------------------------------------

def main():
    for d in (SPM_DIR, MODELS_DIR, REF_DIR):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)

    # 1. sentencepiece
    spiece = train_spm()
    (SPM_DIR / "spiece.model").write_bytes(spiece)
    sp = spm.SentencePieceProcessor(model_proto=spiece)
    log("spm pieces:", sp.get_piece_size())

    # 2. tokenizer
    tok = T5Tokenizer.from_pretrained(str(SPM_DIR))
    assert len(tok) == sp.get_piece_size() + N_EXTRA, (len(tok), sp.get_piece_size())
    for i in range(sp.get_piece_size()):
        assert tok.convert_ids_to_tokens(i) == sp.id_to_piece(i)
    for i in range(N_EXTRA):
        assert tok.convert_tokens_to_ids(f"<extra_id_{i}>") == len(tok) - 1 - i
    tok_ref = make_tokenizer_reference(tok, sp)
    fuzz = tokenizer_fuzz(tok, sp)
    log("tokenizer fuzz:", fuzz)
    dump_json(REF_DIR / "tokenizer.json", tok_ref)
    log("tokenizer.json written")

    # 5. buckets
    dump_json(REF_DIR / "buckets.json", make_buckets(), depth=2)

    # 3/4. models
    manifest_models = {}
    specs = variant_specs(len(tok))
    for name, spec in specs.items():
        log(f"== {name}")
        model = build_model(name, spec)
        out_dir = MODELS_DIR / name
        info = save_variant(name, spec, model, out_dir, spiece)
        del model
        m, loading_info = load_variant(out_dir)
        info["loading_info"] = loading_info
        # sanity checks on what transformers made of the checkpoint
        tied_loaded = m.lm_head.weight is m.shared.weight or \
            m.lm_head.weight.data_ptr() == m.shared.weight.data_ptr()
        info["loaded"] = {
            "scale_decoder_outputs": bool(m.config.scale_decoder_outputs),
            "config_tie_word_embeddings": bool(m.config.tie_word_embeddings),
            "lm_head_shares_storage_with_shared": bool(tied_loaded),
            "lm_head_equals_shared": bool(torch.equal(m.lm_head.weight, m.shared.weight)),
            "dtype": str(m.dtype),
        }
        assert info["loaded"]["scale_decoder_outputs"] == spec["tied"], info["loaded"]
        assert info["loaded"]["lm_head_equals_shared"] == spec["tied"], info["loaded"]
        assert m.dtype == torch.float32
        info["generation_config_loaded"] = generation_config_report(m)
        log("   generation_config:", info["generation_config_loaded"])
        use_cache = spec["config"]["num_layers"] == spec["config"]["num_decoder_layers"]
        info["generate_use_cache"] = use_cache
        m64 = copy.deepcopy(m).to(torch.float64)
        r = Ref(name, m, m64, tok, use_cache)
        score, rows, hidden = r.score()
        ref = {"model": name, "score": score, "logprob_rows": rows, "encoder_hidden": hidden}
        ref["greedy"] = r.greedy()
        ref["beam"] = r.beam()
        ref["batch"] = r.batch()
        cross_check(m, ref)
        log("   independent greedy/beam re-implementation agrees with every recorded case")
        dump_json(REF_DIR / f"{name}.json", ref, depth=3)
        gl = [len(c["ids"]) for c in ref["greedy"]]
        ge = sum(1 for c in ref["greedy"] if c["ids"] and c["ids"][-1] == 1)
        log(f"   greedy lengths {gl}, ending in eos {ge}; beams {[[len(o['ids']) for o in c['outputs']] for c in ref['beam']]}")
        info["config"] = spec["config"]
        info["made_by"] = SHAPING
        info["logit_scale"] = LOGIT_SCALE[name]
        info["eos_scale"] = EOS_SCALE[name]
        info["decoder_sublayer_scale"] = DEC_SUBLAYER_SCALE[name]
        info["seed"] = MODEL_SEED + spec["seed_offset"]
        manifest_models[name] = info

    manifest = {
        "generator": "tools/make_fixtures.py",
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "transformers": transformers.__version__, "sentencepiece": spm.__version__,
                     "safetensors": safetensors.__version__, "numpy": np.__version__},
        "torch_threads": 1,
        "seeds": {"corpus_and_spm": CORPUS_SEED, "model_base": MODEL_SEED},
        "sentencepiece_trainer": SPM_TRAINER_ARGS,
        "tokenizer": {"class": "transformers.T5Tokenizer.from_pretrained(<dir with spiece.model>)",
                      "size": len(tok), "sentencepiece_size": sp.get_piece_size(), "extra_ids": N_EXTRA,
                      "sentinel_id_formula": "<extra_id_i> = tokenizer_size - 1 - i",
                      "fuzz_vs_segmented_sentencepiece": fuzz},
        "robustness": {"greedy_min_margin_gt": GREEDY_MARGIN, "beam_min_final_gap_gt": BEAM_GAP,
                       "fp64_cross_check": "every kept greedy/beam/batch case gives the same ids when the "
                                           "reloaded model is run in float64"},
        "models": manifest_models,
    }
    dump_json(FIX / "manifest.json", manifest, depth=6)
    log("done")


if __name__ == "__main__":
    main()
