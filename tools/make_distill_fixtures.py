#!/usr/bin/env python3
"""Write Tests/Fixtures/distill/ from PyTorch autograd (fp32, CPU): the reference for word-level distillation
(t5 distill, DistillationObjective) and for shrink-and-fine-tune student initialisation. Nothing here is
computed by the Swift project.

    python3 tools/make_distill_fixtures.py

Reuses tools/make_training_fixtures.py (its variants, batch, padding and optimizers). Per variant: a tiny teacher
of 3 encoder and 3 decoder blocks, and a student copied from it as make_student.py does (encoder blocks 0 and 2,
decoder block 1 alone, so the student's decoder block 0 must be given the teacher's block-0 relative position
bias). The loss is Shleifer & Rush's distillation.py word-level loss:

    alpha * CrossEntropyLoss(student, labels) + (1 - alpha) * T^2 * KLDivLoss("batchmean")(
        log_softmax(student / T), softmax(teacher / T))            over the non-padded target positions

with the teacher in eval mode under torch.no_grad(), plus, with a hidden weight W, distillation.py's
calc_hidden_loss per stack: W * sum over student blocks i of the squared difference between the hidden state
entering student block i and the one entering teacher block copied[i], over the real positions and the width,
divided by (real positions * d_model) (the decoder's mask: labels != -100). See Tests/Fixtures/distill/README.md.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
import transformers
from transformers import T5Config, T5ForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_training_fixtures as base  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "Tests" / "Fixtures" / "distill"
SEED = 2468
STUDENT_ENCODER = [0, 2]
STUDENT_DECODER = [1]
# (name, alpha, temperature, hidden weight): the defaults of t5 distill (distillation.py's), KL alone at T = 1,
# the hard term alone (alpha 1, which must be plain fine-tuning), and the defaults plus the hidden-state term.
CASES = [("default", 0.2, 2.0, 0.0), ("kl_only", 0.0, 1.0, 0.0), ("ce_only", 1.0, 2.0, 0.0), ("hidden", 0.2, 2.0, 2.0)]
TRAIN_CASES = ["default", "hidden"]
VARIANTS = ["t5-relu-tied", "t5v11-gated-gelu"]


def hidden_loss(student_states, teacher_states, matches, mask):
    """distillation.py's calc_hidden_loss (normalize_hidden False); states[i] is the input of block i."""
    m = mask.to(student_states[0].dtype)
    valid = m.sum() * student_states[0].size(-1)
    s = torch.stack([student_states[i] for i in range(len(matches))])
    t = torch.stack([teacher_states[j] for j in matches])
    return ((s - t) ** 2 * m.unsqueeze(0).unsqueeze(-1)).sum() / valid


def distill_loss(student, teacher, input_ids, attention_mask, labels, alpha, temperature, hidden_weight=0.0):
    out = student(input_ids=input_ids, attention_mask=attention_mask, labels=labels, output_hidden_states=True)
    with torch.no_grad():
        t_out = teacher(input_ids=input_ids, attention_mask=attention_mask, labels=labels, output_hidden_states=True)
    t_logits = t_out.logits
    mask = labels != -100
    s_sel = out.logits[mask]  # (N, V): distillation.py's masked_select(...).view(-1, vocab_size)
    t_sel = t_logits[mask]
    kl = torch.nn.KLDivLoss(reduction="batchmean")(
        torch.nn.functional.log_softmax(s_sel / temperature, dim=-1),
        torch.nn.functional.softmax(t_sel / temperature, dim=-1)) * temperature ** 2
    loss = alpha * out.loss + (1 - alpha) * kl
    if hidden_weight:
        loss = loss + hidden_weight * (
            hidden_loss(out.encoder_hidden_states, t_out.encoder_hidden_states, STUDENT_ENCODER, attention_mask)
            + hidden_loss(out.decoder_hidden_states, t_out.decoder_hidden_states, STUDENT_DECODER, mask))
    return loss, out.logits


def make_student(teacher, config: dict, tied: bool):
    """make_student.py's create_student_by_copying_alternating_layers for T5, with the block-0 bias rule."""
    cfg = dict(config, num_layers=len(STUDENT_ENCODER), num_decoder_layers=len(STUDENT_DECODER))
    student = T5ForConditionalGeneration(T5Config(**cfg))
    if not tied:
        student.lm_head.weight = torch.nn.Parameter(torch.zeros_like(teacher.lm_head.weight))
    info = student.load_state_dict(teacher.state_dict(), strict=False)
    assert info.missing_keys == [], info.missing_keys
    for stack, chosen in (("encoder", STUDENT_ENCODER), ("decoder", STUDENT_DECODER)):
        src, dst = getattr(teacher, stack).block, getattr(student, stack).block
        for i, j in enumerate(chosen):
            state = src[j].state_dict()
            if i == 0 and j != 0:
                # Only block 0 holds the (shared) relative position bias: keep the teacher's.
                key = "layer.0.SelfAttention.relative_attention_bias.weight"
                state[key] = src[0].state_dict()[key]
            dst[i].load_state_dict(state, strict=True)
    student.config.init_metadata = dict(teacher_type="t5", copied_encoder_layers=STUDENT_ENCODER,
                                        copied_decoder_layers=STUDENT_DECODER)
    student.config._attn_implementation = "eager"
    return student


def main():
    # Everything but the hand-written README is regenerated.
    for entry in OUT.iterdir() if OUT.exists() else []:
        if entry.is_dir():
            shutil.rmtree(entry)
        elif entry.name != "README.md":
            entry.unlink()
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {"generator": "tools/make_distill_fixtures.py",
                "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                             "numpy": np.__version__},
                "torch_threads": 1, "seed": SEED, "variants": {}}
    for offset, name in enumerate(VARIANTS):
        base.log(f"== {name}")
        spec = copy.deepcopy(base.VARIANTS[name])
        spec["config"].update(num_layers=3, num_decoder_layers=3)
        out_dir = OUT / name
        teacher = base.build_model(name, spec, SEED + offset)
        teacher.save_pretrained(out_dir / "teacher", safe_serialization=True)
        student = make_student(teacher, spec["config"], spec["tied"])
        student.save_pretrained(out_dir / "student", safe_serialization=True)
        for d in ("teacher", "student"):
            gen = out_dir / d / "generation_config.json"
            if gen.exists():
                gen.unlink()
        teacher.eval()
        initial = base.params_of(student)

        inputs, targets = base.make_batch(spec["config"]["vocab_size"], SEED * 7 + offset)
        input_ids, attention_mask, labels = base.tensors(inputs, targets)
        tokens = int((labels != -100).sum())
        ref = {"model": name, "tied": spec["tied"], "teacher_config": spec["config"],
               "student_layers": {"encoder": STUDENT_ENCODER, "decoder": STUDENT_DECODER},
               "batch": {"input_ids": inputs, "target_ids": targets}, "tokens": tokens, "cases": {}}

        student.train()
        for case, alpha, temperature, hidden in CASES:
            student.zero_grad(set_to_none=True)
            loss, _ = distill_loss(student, teacher, input_ids, attention_mask, labels, alpha, temperature, hidden)
            loss.backward()
            file = f"grads_{case}.safetensors"
            safetensors.torch.save_file(base.grads_of(student), out_dir / file)
            ref["cases"][case] = {"alpha": alpha, "temperature": temperature, "hidden_weight": hidden,
                                  "loss": base.f32(loss.item()), "grads": file}
            base.log(f"   {case}: alpha {alpha} T {temperature} hidden {hidden} loss {loss.item():.6f}")

        ref["optimizers"] = {}
        for train_case, opt_name in [(c, o) for c in TRAIN_CASES for o in ("adamw", "adafactor")]:
            _, alpha, temperature, hidden = next(c for c in CASES if c[0] == train_case)
            run = opt_name if train_case == "default" else f"{opt_name}_{train_case}"
            o = base.OPTIMIZERS[opt_name]
            m = copy.deepcopy(student)
            m.train()
            opt = o["make"](m.parameters())
            losses = []
            for _ in range(base.STEPS):
                opt.zero_grad(set_to_none=True)
                loss, _ = distill_loss(m, teacher, input_ids, attention_mask, labels, alpha, temperature, hidden)
                loss.backward()
                opt.step()
                losses.append(base.f32(loss.item()))
            file = f"after_{run}.safetensors"
            safetensors.torch.save_file(base.params_of(m), out_dir / file)
            ref["optimizers"][run] = {"class": o["cls"], "hyperparameters": o["hyperparameters"], "case": train_case,
                                      "steps": base.STEPS, "losses_before_each_step": losses, "file": file}
            base.log(f"   {run}: losses {losses}")
        for k, v in base.params_of(student).items():
            assert torch.equal(v, initial[k]), k
        (out_dir / "reference.json").write_text(json.dumps(ref, indent=1) + "\n")
        manifest["variants"][name] = {"seed": SEED + offset, "batch_seed": SEED * 7 + offset}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    base.log(f"total {sum(p.stat().st_size for p in OUT.rglob('*') if p.is_file())} bytes")


if __name__ == "__main__":
    main()
