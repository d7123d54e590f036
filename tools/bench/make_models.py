#!/usr/bin/env python3
"""Write random T5 checkpoints of real model shapes for the peer benchmark.

Each model is saved with transformers' save_pretrained(safe_serialization=True) in fp32, plus a
spiece.model (the project's small test tokenizer; config.vocab_size is larger than the tokenizer,
which T5 allows). The weights are random: the benchmark measures speed, never quality.

    python3 tools/bench/make_models.py [OUT_DIR] [--models small,flan-small,base] [--spm PATH]

OUT_DIR defaults to /tmp/t5-bench-models; models go to OUT_DIR/<name>.
"""
import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import T5Config, T5ForConditionalGeneration

REPO = Path(__file__).resolve().parents[2]
SPM_REL = "Tests/Fixtures/spm/spiece.model"

# Shapes of google-t5/t5-small, google/flan-t5-small and google-t5/t5-base.
COMMON = dict(vocab_size=32128, d_kv=64, relative_attention_num_buckets=32, relative_attention_max_distance=128,
              dropout_rate=0.1, layer_norm_epsilon=1e-6, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
MODELS = {
    "small": dict(config=dict(d_model=512, d_ff=2048, num_layers=6, num_decoder_layers=6, num_heads=8,
                              feed_forward_proj="relu", tie_word_embeddings=True), tied=True, seed=1),
    "flan-small": dict(config=dict(d_model=512, d_ff=1024, num_layers=8, num_decoder_layers=8, num_heads=6,
                                   feed_forward_proj="gated-gelu", tie_word_embeddings=False), tied=False, seed=2),
    "base": dict(config=dict(d_model=768, d_ff=3072, num_layers=12, num_decoder_layers=12, num_heads=12,
                             feed_forward_proj="relu", tie_word_embeddings=True), tied=True, seed=3),
}


def spiece_bytes(explicit: str | None) -> bytes:
    """The test tokenizer: --spm, else the repository's fixture, else the fixture on a local branch."""
    if explicit:
        return Path(explicit).read_bytes()
    path = REPO / SPM_REL
    if path.exists():
        return path.read_bytes()
    # The fixture may live on another branch of this repository than the one checked out here.
    for ref in ("main", "fixtures"):
        r = subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:{SPM_REL}"], capture_output=True)
        if r.returncode == 0 and r.stdout:
            print(f"spiece.model taken from git {ref}:{SPM_REL}", file=sys.stderr)
            return r.stdout
    sys.exit(f"no {SPM_REL} in {REPO} (nor on branches main/fixtures); pass --spm PATH")


def build(name: str):
    spec = MODELS[name]
    torch.manual_seed(spec["seed"])
    model = T5ForConditionalGeneration(T5Config(**COMMON, **spec["config"])).eval()
    if not spec["tied"]:
        # transformers 5 always ties lm_head to shared at construction (config.tie_word_embeddings is forced
        # True; "tie_word_embeddings": false in the kwargs becomes scale_decoder_outputs = False). Give the
        # v1.1/Flan shape its own lm_head, as the real checkpoints have; save_pretrained then stores it.
        with torch.no_grad():
            g = torch.Generator().manual_seed(1000 + spec["seed"])
            model.lm_head.weight = torch.nn.Parameter(torch.randn(model.lm_head.weight.shape, generator=g))
    assert bool(model.config.scale_decoder_outputs) == spec["tied"]
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default="/tmp/t5-bench-models")
    ap.add_argument("--models", default="small,flan-small,base", help="comma-separated subset of " + ",".join(MODELS))
    ap.add_argument("--spm", help=f"tokenizer to copy (default: {SPM_REL} of this repository)")
    ap.add_argument("--force", action="store_true", help="rewrite models that already exist")
    args = ap.parse_args()
    names = [n for n in args.models.split(",") if n]
    for n in names:
        if n not in MODELS:
            sys.exit(f"unknown model {n!r}; choose from {', '.join(MODELS)}")
    spm = spiece_bytes(args.spm)
    out = Path(args.out)
    for name in names:
        d = out / name
        if (d / "config.json").exists() and (d / "spiece.model").exists() and not args.force:
            print(f"{d}: exists (use --force to rewrite)")
            continue
        t0 = time.time()
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        model = build(name)
        model.save_pretrained(d, safe_serialization=True)
        (d / "spiece.model").write_bytes(spm)
        # Check what transformers makes of the checkpoint it just wrote.
        m = T5ForConditionalGeneration.from_pretrained(d, dtype=torch.float32)
        tied = m.lm_head.weight.data_ptr() == m.shared.weight.data_ptr() or torch.equal(m.lm_head.weight, m.shared.weight)
        assert tied == MODELS[name]["tied"], (name, tied)
        assert bool(m.config.scale_decoder_outputs) == MODELS[name]["tied"]
        params = sum(p.numel() for p in m.parameters())
        size = sum(f.stat().st_size for f in d.iterdir())
        print(f"{d}: {params / 1e6:.1f}M parameters, {size / 1e6:.0f} MB on disk, tied={tied}, "
              f"{time.time() - t0:.1f}s")
        del model, m


if __name__ == "__main__":
    main()
