#!/usr/bin/env python3
"""Write Tests/Fixtures/training/ from PyTorch autograd (fp32, CPU): the reference for the Swift backward
pass and optimizers. Nothing here is ever computed by the Swift project.

    python3 tools/make_training_fixtures.py

Needs: torch, transformers (5.24.0 was used), safetensors, numpy. Deterministic (fixed seeds, one thread).
See Tests/Fixtures/training/README.md for the output format.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
import transformers
from transformers import T5Config, T5ForConditionalGeneration, UMT5Config, UMT5ForConditionalGeneration
from transformers.optimization import Adafactor

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "Tests" / "Fixtures" / "training"

SEED = 4321
STEPS = 3
LABEL_SMOOTHING = 0.1

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
transformers.logging.set_verbosity_error()

# Two tiny variants with transformers' ordinary initialisation (T5PreTrainedModel._init_weights,
# initializer_factor 1.0). Few buckets and a small max_distance so that the short batch below reaches the
# logarithmic buckets and the clamp beyond max_distance in both directions.
VARIANTS = {
    # Original T5: relu, tied embeddings, decoder output rescaled by d_model^-0.5 before the LM head.
    "t5-relu-tied": dict(
        tied=True,
        config=dict(vocab_size=128, d_model=32, d_kv=8, num_heads=4, d_ff=32, num_layers=2,
                    num_decoder_layers=2, relative_attention_num_buckets=8,
                    relative_attention_max_distance=10, feed_forward_proj="relu",
                    layer_norm_epsilon=1e-6, dropout_rate=0.0,
                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1),
        label_smoothing=False,
    ),
    # T5 v1.1: gated gelu_new, separate lm_head (no rescale), num_heads·d_kv = 12 ≠ d_model = 32,
    # one encoder block and two decoder blocks.
    "t5v11-gated-gelu": dict(
        tied=False,
        config=dict(vocab_size=128, d_model=32, d_kv=4, num_heads=3, d_ff=32, num_layers=1,
                    num_decoder_layers=2, relative_attention_num_buckets=8,
                    relative_attention_max_distance=10, feed_forward_proj="gated-gelu",
                    tie_word_embeddings=False, layer_norm_epsilon=1e-5, dropout_rate=0.0,
                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1),
        label_smoothing=True,
    ),
    # UMT5: every block of both stacks has its own relative attention bias, and each gets its own gradient.
    "umt5-gated-gelu": dict(
        tied=False, model_class="umt5",
        config=dict(vocab_size=128, d_model=32, d_kv=4, num_heads=3, d_ff=32, num_layers=2,
                    num_decoder_layers=2, relative_attention_num_buckets=8,
                    relative_attention_max_distance=10, feed_forward_proj="gated-gelu",
                    tie_word_embeddings=False, layer_norm_epsilon=1e-6, dropout_rate=0.0,
                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1),
        label_smoothing=False,
    ),
}

# Inputs and targets of different lengths (targets end with eos = 1). Longest input 13 and target 12 go past
# max_distance 10.
INPUT_LENGTHS = [9, 13, 4]
TARGET_LENGTHS = [6, 3, 12]

OPTIMIZERS = {
    "adamw": dict(
        cls="torch.optim.AdamW",
        hyperparameters=dict(lr=1e-3, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.01),
        make=lambda params: torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
    ),
    "adafactor": dict(
        cls="transformers.optimization.Adafactor",
        hyperparameters=dict(lr=1e-3, eps=[1e-30, 1e-3], clip_threshold=1.0, decay_rate=-0.8, beta1=None,
                             weight_decay=0.0, scale_parameter=False, relative_step=False, warmup_init=False),
        make=lambda params: Adafactor(params, lr=1e-3, scale_parameter=False, relative_step=False,
                                      warmup_init=False),
    ),
    "adafactor_relative": dict(
        cls="transformers.optimization.Adafactor",
        hyperparameters=dict(lr=None, eps=[1e-30, 1e-3], clip_threshold=1.0, decay_rate=-0.8, beta1=None,
                             weight_decay=0.0, scale_parameter=True, relative_step=True, warmup_init=False),
        make=lambda params: Adafactor(params, lr=None, relative_step=True, scale_parameter=True,
                                      warmup_init=False),
    ),
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def f32(x) -> float:
    v = float(np.float32(x))
    if not math.isfinite(v):
        raise ValueError(f"non-finite float in fixture: {v}")
    return v


def build_model(name: str, spec: dict, seed: int) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    if spec.get("model_class") == "umt5":
        model = UMT5ForConditionalGeneration(UMT5Config(**spec["config"]))
    else:
        model = T5ForConditionalGeneration(T5Config(**spec["config"]))
    if not spec["tied"]:
        # transformers 5 always ties lm_head to shared (configuration_t5.py forces tie_word_embeddings = True and
        # keeps the old flag only as scale_decoder_outputs); an untied checkpoint is one whose lm_head.weight is
        # its own tensor. Give it one, initialised as _init_weights does for an untied head: normal(0, 1).
        g = torch.Generator().manual_seed(seed * 10 + 1)
        model.lm_head.weight = torch.nn.Parameter(torch.randn(model.lm_head.weight.shape, generator=g))
        assert model.lm_head.weight is not model.shared.weight
    else:
        assert model.lm_head.weight is model.shared.weight
    assert model.config.scale_decoder_outputs == spec["tied"]
    model.config._attn_implementation = "eager"  # eager_attention_forward: the reference T5 attention
    return model


def make_batch(vocab: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(2, vocab, (n,), generator=g).tolist() for n in INPUT_LENGTHS]
    targets = [torch.randint(2, vocab, (n - 1,), generator=g).tolist() + [1] for n in TARGET_LENGTHS]
    return inputs, targets


def pad(seqs, value):
    n = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (n - len(s)) for s in seqs], dtype=torch.long)


def tensors(inputs, targets):
    input_ids = pad(inputs, 0)
    attention_mask = pad([[1] * len(s) for s in inputs], 0)
    labels = pad(targets, -100)  # transformers ignores -100 in CrossEntropyLoss and maps it to pad in _shift_right
    return input_ids, attention_mask, labels


def loss_and_logits(model, input_ids, attention_mask, labels, label_smoothing=0.0):
    out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    if label_smoothing == 0.0:
        return out.loss, out.logits
    # Not part of T5ForConditionalGeneration: the loss a trainer would apply to the same logits.
    fct = torch.nn.CrossEntropyLoss(ignore_index=-100, label_smoothing=label_smoothing)
    v = out.logits.size(-1)
    return fct(out.logits.view(-1, v), labels.view(-1)), out.logits


def grads_of(model) -> dict:
    return {k: p.grad.detach().clone().contiguous() for k, p in model.named_parameters()}


def params_of(model) -> dict:
    return {k: p.detach().clone().contiguous() for k, p in model.named_parameters()}


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    manifest = {
        "generator": "tools/make_training_fixtures.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "safetensors": safetensors.__version__, "numpy": np.__version__},
        "torch_threads": 1,
        "seed": SEED,
        "variants": {},
    }
    for offset, (name, spec) in enumerate(VARIANTS.items()):
        log(f"== {name}")
        out_dir = OUT / name
        model = build_model(name, spec, SEED + offset)
        initial = params_of(model)
        model.save_pretrained(out_dir, safe_serialization=True)
        gen = out_dir / "generation_config.json"
        if gen.exists():
            gen.unlink()
        saved = set(safetensors.torch.load_file(out_dir / "model.safetensors").keys())
        assert set(initial) <= saved, (set(initial) - saved)

        cfg = model.config
        inputs, targets = make_batch(cfg.vocab_size, SEED * 7 + offset)
        input_ids, attention_mask, labels = tensors(inputs, targets)
        mask = labels != -100
        tokens = int(mask.sum())

        # Gradient at the initial weights: model.train() with dropout_rate 0 (no dropout anywhere).
        model.train()
        model.zero_grad(set_to_none=True)
        loss, logits = loss_and_logits(model, input_ids, attention_mask, labels)
        loss.backward()
        grads = grads_of(model)
        assert set(grads) == set(initial)
        correct = int(((logits.argmax(-1) == labels) & mask).sum())
        safetensors.torch.save_file(grads, out_dir / "grads.safetensors")
        ref = {
            "model": name,
            "config": {k: spec["config"][k] for k in spec["config"]},
            "tied": spec["tied"],
            "dropout_rate": 0.0,
            "batch": {"input_ids": inputs, "target_ids": targets},
            "padded": {"input_ids": input_ids.tolist(), "attention_mask": attention_mask.tolist(),
                       "labels": labels.tolist(), "decoder_input_ids": model._shift_right(labels).tolist()},
            "tokens": tokens,
            "loss": f32(loss.item()),
            "correct": correct,
            "grads": "grads.safetensors",
            "grad_norms": {k: f32(g.norm().item()) for k, g in grads.items()},
        }
        log(f"   loss {loss.item():.6f} tokens {tokens} correct {correct}")

        if spec["label_smoothing"]:
            model.zero_grad(set_to_none=True)
            ls_loss, _ = loss_and_logits(model, input_ids, attention_mask, labels, LABEL_SMOOTHING)
            ls_loss.backward()
            safetensors.torch.save_file(grads_of(model), out_dir / "grads_label_smoothing.safetensors")
            ref["label_smoothing"] = {"epsilon": LABEL_SMOOTHING, "loss": f32(ls_loss.item()),
                                      "grads": "grads_label_smoothing.safetensors"}
            log(f"   label-smoothed loss {ls_loss.item():.6f}")

        # Optimizers: STEPS steps on the same batch, dropout 0, no clipping, constant lr.
        ref["optimizers"] = {}
        for opt_name, o in OPTIMIZERS.items():
            m = copy.deepcopy(model)
            assert (m.lm_head.weight is m.shared.weight) == spec["tied"]
            m.train()
            opt = o["make"](m.parameters())
            losses = []
            for _ in range(STEPS):
                opt.zero_grad(set_to_none=True)
                l, _ = loss_and_logits(m, input_ids, attention_mask, labels)
                l.backward()
                opt.step()
                losses.append(f32(l.item()))
            file = f"after_{opt_name}.safetensors"
            safetensors.torch.save_file(params_of(m), out_dir / file)
            ref["optimizers"][opt_name] = {"class": o["cls"], "hyperparameters": o["hyperparameters"],
                                           "steps": STEPS, "losses_before_each_step": losses, "file": file}
            log(f"   {opt_name}: losses {losses}")

        # The weights used above must be the ones saved (the deep copies did not touch `model`).
        for k, v in params_of(model).items():
            assert torch.equal(v, initial[k]), k
        (out_dir / "reference.json").write_text(json.dumps(ref, indent=1) + "\n")
        manifest["variants"][name] = {"seed": SEED + offset, "batch_seed": SEED * 7 + offset,
                                      "init": "T5PreTrainedModel._init_weights, initializer_factor 1.0"
                                      + ("" if spec["tied"] else "; lm_head.weight = normal(0, 1) untied")}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    log(f"total {total} bytes")


if __name__ == "__main__":
    main()
