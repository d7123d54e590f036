#!/usr/bin/env python3
"""Embedding benchmark: PyTorch's T5EncoderModel, ONNX Runtime and `t5 bench --embed`, same protocol.

    python3 tools/bench/embed.py --model /tmp/t5-bench-models/small --runs 7 --threads 2 \
        --t5 .build/release/t5 [--json /tmp/embed.json]

Rows (those of `t5 bench --embed`): one input of 128 tokens, and a batch of 32 inputs of 128 tokens in one
call; each the encoder's last hidden state plus masked mean pooling (sentence-transformers' mean), fp32.
Inputs are random ordinary ids (numpy seed --seed) ending with eos, the same for the Python peers; `t5 bench`
draws its own random ids of the same shape (the encoder's cost does not depend on which ids). Each peer
runs in its own process, once to warm up and then --runs times; medians and min-max are reported.
ONNX Runtime runs the encoder exported by torch.onnx (dynamic batch and length, opset 17) with all graph
optimizations. Needs pip's torch, transformers, onnx, onnxruntime.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
LENGTH, BATCH = 128, 32


def inputs(seed, vocab):
    import numpy as np
    rng = np.random.default_rng(seed)
    def one():
        return list(rng.integers(3, vocab, LENGTH - 1)) + [1]
    return [one()], [one() for _ in range(BATCH)]


def timed(body, runs):
    body()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        body()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"median": times[len(times) // 2], "min": times[0], "max": times[-1]}


def worker(args):
    import numpy as np
    one, batch = inputs(args.seed, args.vocab)
    if args.worker == "pytorch":
        import torch
        from transformers import T5EncoderModel
        torch.set_num_threads(args.threads)
        t0 = time.perf_counter()
        model = T5EncoderModel.from_pretrained(args.model, dtype=torch.float32).eval()
        load = (time.perf_counter() - t0) * 1000

        def run(ids):
            with torch.inference_mode():
                x = torch.tensor(ids)
                mask = torch.ones_like(x)
                h = model(input_ids=x, attention_mask=mask).last_hidden_state
                m = mask.unsqueeze(-1).to(h.dtype)
                return ((h * m).sum(1) / m.sum(1)).numpy()
    else:
        import onnxruntime as ort
        path = Path(args.work) / (Path(args.model).name + "-encoder.onnx")
        if not path.exists():
            export(args.model, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        t0 = time.perf_counter()
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        load = (time.perf_counter() - t0) * 1000

        def run(ids):
            x = np.asarray(ids, dtype=np.int64)
            mask = np.ones_like(x)
            h = session.run(None, {"input_ids": x, "attention_mask": mask})[0]
            m = mask[..., None].astype(h.dtype)
            return (h * m).sum(1) / m.sum(1)
    b1 = timed(lambda: run(one), args.runs)
    b32 = timed(lambda: run(batch), args.runs)
    import resource
    print(json.dumps({"load_ms": load, "embed_b1_ms": b1, "embed_b32_ms": b32,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000}))


def export(model_dir, path):
    import torch
    from transformers import T5EncoderModel
    model = T5EncoderModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.ones(2, 16, dtype=torch.long)
    with torch.inference_mode():
        torch.onnx.export(model, (x, torch.ones_like(x)), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"},
                                        "last_hidden_state": {0: "b", 1: "s"}})


def run_peer(cmd, env):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a T5 checkpoint directory (full or encoder-only)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--t5", default="./.build/release/t5")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--work", default="/tmp/t5-bench-work")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--vocab", type=int, default=3000, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    vocab = json.load(open(Path(args.model) / "config.json"))["vocab_size"]
    # Ordinary ids below the test tokenizer's size, as `t5 bench` draws them (the cost does not depend on them).
    vocab = min(vocab, 3000)
    results = {}
    for peer in ["pytorch", "onnxruntime"]:
        results[peer] = run_peer([sys.executable, str(HERE), "--worker", peer, "--model", args.model, "--runs", str(args.runs),
                                  "--threads", str(args.threads), "--seed", str(args.seed), "--work", args.work,
                                  "--vocab", str(vocab)], env)
    raw = run_peer([args.t5, "bench", "--embed", "--model", args.model, "--runs", str(args.runs), "--threads", str(args.threads), "--json"], env)
    results["t5"] = {"load_ms": raw["load_ms"], "peak_rss_mb": raw["peak_rss_mb"]}
    for key in ["embed_b1_ms", "embed_b32_ms"]:
        base = key[: -len("_ms")]
        results["t5"][key] = {"median": raw[key], "min": raw[base + "_run_min_ms"], "max": raw[base + "_run_max_ms"]}
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    print(f"CPU: {cpu}; {args.threads} threads; {args.runs} runs; model {args.model}")
    print(f"{'row':34} {'PyTorch':>16} {'ONNX Runtime':>16} {'t5 (ours)':>16} {'vs best peer':>13}")
    for key, label in [("embed_b1_ms", "embed 1 x 128, ms"), ("embed_b32_ms", "embed 32 x 128, ms")]:
        vals = {p: results[p][key] for p in results}
        best = min(vals["pytorch"]["median"], vals["onnxruntime"]["median"])
        cells = [f"{vals[p]['median']:8.2f} ({vals[p]['min']:.1f}-{vals[p]['max']:.1f})" for p in ["pytorch", "onnxruntime", "t5"]]
        print(f"{label:34} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16} {best / vals['t5']['median']:12.2f}x")
    print(f"{'peak RSS, MB':34} " + " ".join(f"{results[p]['peak_rss_mb']:16.0f}" for p in ["pytorch", "onnxruntime", "t5"]))
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu, "threads": args.threads, "runs": args.runs, "model": args.model,
                                               "results": results}, indent=2))


if __name__ == "__main__":
    main()
