#!/usr/bin/env python3
"""Reference answers for the optimizers, gradient clipping and learning-rate schedules.

Writes Tests/Fixtures/optimizers/optimizers.json: a few small parameter tensors, a fixed sequence
of synthetic gradients, and for each case the parameters after every step of

  * torch.optim.AdamW (torch's defaults unless the case says otherwise),
  * transformers.optimization.Adafactor in its three modes (fixed lr; relative step with
    scale_parameter; relative step with warmup_init) and with beta1 / weight_decay,
  * either optimizer after torch.nn.utils.clip_grad_norm_,
  * either optimizer driven by transformers' schedules through LambdaLR
    (get_constant_schedule_with_warmup, get_linear_schedule_with_warmup, get_inverse_sqrt_schedule),

in the order the transformers Trainer runs them: clip, optimizer.step(), scheduler.step().
It also writes the schedules' multipliers for a range of steps.

This script is the only source of these numbers; the Swift tests never record their own output.
Run from the repository root:  python tools/make_optimizer_fixtures.py
"""

import json
import os
import platform

import numpy as np
import torch
import transformers
from transformers.optimization import (
    Adafactor,
    get_constant_schedule_with_warmup,
    get_inverse_sqrt_schedule,
    get_linear_schedule_with_warmup,
)

SEED = 20240611
STEPS = 5
OUT = os.path.join("Tests", "Fixtures", "optimizers", "optimizers.json")

torch.set_num_threads(1)


def make_parameters(rng):
    """Shapes and magnitudes like a T5's: matrices (factored by Adafactor), a layer-norm vector
    (not factored), an embedding whose unused rows get exactly zero gradient, and a single-row matrix."""
    return {
        "encoder.block.0.layer.0.SelfAttention.q.weight": rng.normal(0, 0.3, (6, 5)),
        "encoder.block.0.layer.0.layer_norm.weight": 1 + rng.normal(0, 0.05, (5,)),
        "shared.weight": rng.normal(0, 1.0, (8, 4)),
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight": rng.normal(0, 0.2, (1, 7)),
    }


def make_gradients(rng, params):
    """STEPS gradients per tensor. Magnitudes change from step to step (so clipping is active on
    some steps only); `shared.weight` rows 5-7 are zero (tokens absent from the batch) and one
    step of the layer-norm gradient is all zero."""
    scales = [0.05, 0.8, 0.02, 1.5, 0.1]
    steps = []
    for s in range(STEPS):
        g = {}
        for name, p in params.items():
            x = rng.normal(0, scales[s], p.shape)
            if name == "shared.weight":
                x[5:] = 0
            if name.endswith("layer_norm.weight") and s == 2:
                x[:] = 0
            g[name] = x
        steps.append(g)
    return steps


def as_f32_lists(t):
    return [float(v) for v in t.detach().reshape(-1).to(torch.float32).tolist()]


CASES = [
    # name, optimizer kind, optimizer kwargs, schedule (or None), max_grad_norm (or None)
    ("adamw_torch_defaults", "adamw", {}, None, None),
    ("adamw_lr1e-3_wd0.01", "adamw", {"lr": 1e-3, "weight_decay": 0.01}, None, None),
    ("adamw_betas_eps_wd0", "adamw", {"lr": 3e-2, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.0}, None, None),
    ("adafactor_fixed_lr", "adafactor",
     {"lr": 1e-3, "scale_parameter": False, "relative_step": False, "warmup_init": False}, None, None),
    ("adafactor_relative_step", "adafactor",
     {"lr": None, "scale_parameter": True, "relative_step": True, "warmup_init": False}, None, None),
    # warmup_init's rate is 1e-6·t·max(1e-3, RMS): on O(1) parameters that is below fp32 resolution,
    # so this case starts from parameters scaled by 1e-6 (their RMS is then under eps₂).
    ("adafactor_relative_step_warmup_init", "adafactor",
     {"lr": None, "scale_parameter": True, "relative_step": True, "warmup_init": True, "initial_scale": 1e-6}, None, None),
    ("adafactor_relative_step_unscaled", "adafactor",
     {"lr": None, "scale_parameter": False, "relative_step": True, "warmup_init": False}, None, None),
    ("adafactor_fixed_lr_scaled_beta1_wd", "adafactor",
     {"lr": 1e-2, "scale_parameter": True, "relative_step": False, "warmup_init": False,
      "beta1": 0.9, "weight_decay": 0.01, "clip_threshold": 0.5}, None, None),
    ("adamw_clip_1.0", "adamw", {"lr": 1e-3, "weight_decay": 0.01}, None, 1.0),
    ("adafactor_fixed_lr_clip_0.5", "adafactor",
     {"lr": 1e-3, "scale_parameter": False, "relative_step": False, "warmup_init": False}, None, 0.5),
    ("adamw_linear_warmup2", "adamw", {"lr": 1e-2, "weight_decay": 0.01}, ("linear", 2), None),
    ("adamw_inverse_sqrt_warmup2", "adamw", {"lr": 1e-2, "weight_decay": 0.01}, ("inverse_sqrt", 2), None),
    ("adafactor_fixed_lr_constant_warmup2", "adafactor",
     {"lr": 1e-2, "scale_parameter": False, "relative_step": False, "warmup_init": False}, ("constant", 2), 1.0),
    ("adafactor_fixed_lr_linear_warmup0", "adafactor",
     {"lr": 1e-2, "scale_parameter": False, "relative_step": False, "warmup_init": False}, ("linear", 0), None),
]


def make_schedule(optimizer, spec):
    kind, warmup = spec
    if kind == "constant":
        return get_constant_schedule_with_warmup(optimizer, num_warmup_steps=warmup)
    if kind == "linear":
        return get_linear_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=STEPS)
    if kind == "inverse_sqrt":
        return get_inverse_sqrt_schedule(optimizer, num_warmup_steps=warmup)
    raise ValueError(kind)


def run_case(params0, grads, kind, kwargs, schedule, max_grad_norm):
    kwargs = dict(kwargs)
    scale = kwargs.pop("initial_scale", 1.0)
    params0 = {n: (v * np.float32(scale)).astype(np.float32) for n, v in params0.items()}
    names = list(params0)
    tensors = {n: torch.nn.Parameter(torch.tensor(params0[n], dtype=torch.float32)) for n in names}
    ordered = [tensors[n] for n in names]
    if kind == "adamw":
        # foreach=False: the single-tensor loop torch uses on the CPU by default anyway.
        optimizer = torch.optim.AdamW(ordered, foreach=False, **kwargs)
    else:
        optimizer = Adafactor(ordered, **kwargs)
    scheduler = make_schedule(optimizer, schedule) if schedule else None
    steps = []
    for g in grads:
        for n in names:
            tensors[n].grad = torch.tensor(g[n], dtype=torch.float32)
        record = {}
        if max_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(ordered, max_grad_norm)
            record["grad_norm"] = float(norm)
        if kind == "adamw" or kwargs.get("lr") is not None:
            record["lr"] = float(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler:
            scheduler.step()
        record["params"] = {n: as_f32_lists(tensors[n]) for n in names}
        steps.append(record)
    return steps


def schedule_multipliers():
    """The LambdaLR multipliers for steps 0..N of each schedule, through a dummy optimizer with lr 1."""
    out = []
    for kind, warmup, total in [("constant", 0, 10), ("constant", 3, 10), ("linear", 0, 10),
                                ("linear", 3, 10), ("linear", 4, 7), ("inverse_sqrt", 0, 10),
                                ("inverse_sqrt", 3, 10), ("inverse_sqrt", 1000, 10)]:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        if kind == "constant":
            sched = get_constant_schedule_with_warmup(opt, num_warmup_steps=warmup)
        elif kind == "linear":
            sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=warmup, num_training_steps=total)
        else:
            sched = get_inverse_sqrt_schedule(opt, num_warmup_steps=warmup)
        values = []
        probe = list(range(0, total + 3)) if warmup < 100 else [0, 1, 10, 500, 999, 1000, 1001, 5000]
        for step in probe:
            values.append(sched.lr_lambdas[0](step))
        out.append({"schedule": kind, "warmup": warmup, "total": total, "steps": probe, "multipliers": values})
    return out


def main():
    rng = np.random.default_rng(SEED)
    params0 = {n: v.astype(np.float32) for n, v in make_parameters(rng).items()}
    grads = [{n: v.astype(np.float32) for n, v in g.items()} for g in make_gradients(rng, params0)]
    cases = []
    for name, kind, kwargs, schedule, clip in CASES:
        options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()}
        cases.append({
            "name": name,
            "optimizer": kind,
            "options": options,
            "schedule": {"kind": schedule[0], "warmup": schedule[1], "total": STEPS} if schedule else None,
            "max_grad_norm": clip,
            "steps": run_case(params0, grads, kind, kwargs, schedule, clip),
        })
    fixture = {
        "generator": "tools/make_optimizer_fixtures.py",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__},
        "seed": SEED,
        "order": "per step: clip_grad_norm_ (if max_grad_norm), optimizer.step(), scheduler.step()",
        "shapes": {n: list(v.shape) for n, v in params0.items()},
        "initial": {n: [float(x) for x in v.reshape(-1)] for n, v in params0.items()},
        "gradients": [{n: [float(x) for x in v.reshape(-1)] for n, v in g.items()} for g in grads],
        "cases": cases,
        "schedules": schedule_multipliers(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
