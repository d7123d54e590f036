#!/usr/bin/env python3
"""Time the weight GEMMs of a T5 encoder pass (1 x 128 tokens) and of the LM head through the system
OpenBLAS that `t5` links (cblas_sgemm, weights stored [out, in], used with the transpose flag as the
runtime does). Compare with `t5 bench`'s encoder row: the rest is time spent outside the weight GEMMs.

    python3 tools/bench/gemm_probe.py --model /tmp/t5-bench-models/small --threads 2

OPENBLAS_CORETYPE=SkylakeX forces OpenBLAS's AVX-512 kernels (OPENBLAS_VERBOSE=2 prints the core used).
"""
import argparse
import ctypes
import json
import time
from pathlib import Path

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model directory (only config.json is read)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--lib", default="/lib/x86_64-linux-gnu/libopenblas.so.0")
    args = ap.parse_args()
    c = json.loads((Path(args.model) / "config.json").read_text())
    D, F, inner = c["d_model"], c["d_ff"], c["num_heads"] * c["d_kv"]
    gated = c.get("feed_forward_proj", "relu").startswith("gated")
    lib = ctypes.CDLL(args.lib)
    lib.openblas_set_num_threads(args.threads)
    P = ctypes.POINTER(ctypes.c_float)

    def gemm(a, w, out):  # out (M, N) = a (M, K) @ w (N, K)^T
        m, k = a.shape
        lib.cblas_sgemm(101, 111, 112, m, w.shape[0], k, ctypes.c_float(1), a.ctypes.data_as(P), k,
                        w.ctypes.data_as(P), k, ctypes.c_float(0), out.ctypes.data_as(P), w.shape[0])

    rng = np.random.default_rng(0)
    shapes = [(inner, D)] * 3 + [(D, inner)] + ([(F, D), (F, D)] if gated else [(F, D)]) + [(D, F)]
    weights = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    acts = {k: rng.standard_normal((args.tokens, k), dtype=np.float32) for k in {D, inner, F}}
    outs = {n: np.empty((args.tokens, n), np.float32) for n in {D, inner, F}}

    def encoder():
        for _ in range(c["num_layers"]):
            for w in weights:
                gemm(acts[w.shape[1]], w, outs[w.shape[0]])

    def median_ms(fn, n=7):
        fn()
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return sorted(ts)[n // 2] * 1e3

    flops = 2 * args.tokens * c["num_layers"] * sum(a * b for a, b in shapes)
    ms = median_ms(encoder)
    print(f"encoder weight GEMMs, 1 x {args.tokens} tokens, {args.threads} threads: {ms:.1f} ms "
          f"({flops / ms / 1e6:.0f} GFLOP/s)")
    head = rng.standard_normal((c["vocab_size"], D), dtype=np.float32)
    for m in (1, 4, 16):
        a, o = rng.standard_normal((m, D), dtype=np.float32), np.empty((m, c["vocab_size"]), np.float32)
        ms = median_ms(lambda: gemm(a, head, o))
        print(f"LM head, {m} row(s): {ms:.2f} ms ({head.nbytes / ms / 1e6:.1f} GB/s of weights)")


if __name__ == "__main__":
    main()
