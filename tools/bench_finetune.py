#!/usr/bin/env python3
"""Training throughput of `t5 finetune` next to PyTorch, on the same machine, model shape and batch.

    python tools/bench_finetune.py [--t5 .build/release/t5] [--threads 2] [--steps 20]

The model is t5-small-shaped (d_model 512, d_ff 2048, 8 heads × 64, 6 + 6 blocks, vocab 32128, relu,
tied embeddings, dropout 0.1) with random weights; every batch is 8 examples of exactly 64 input and
32 target tokens (</s> included); the optimizer is AdamW (lr 1e-3, torch's defaults) with gradient
clipping at 1.0, as the transformers Trainer runs it. Tokens/s counts input + target tokens
(8 × 96 per step), measured over the steps after the first few (warm-up).

PyTorch runs T5ForConditionalGeneration in train mode: zero_grad, forward with labels, backward,
clip_grad_norm_, AdamW.step, with torch.set_num_threads(--threads). `t5 finetune` runs on data files
whose lines tokenize to exactly those lengths (numbers 10-40 are single pieces of the fixture tokenizer),
with --threads; its step times come from the metrics log.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time

import torch
from transformers import T5Config, T5ForConditionalGeneration

BATCH, INPUT, TARGET = 8, 64, 32
SPM = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "spm", "spiece.model")


def config():
    return T5Config(vocab_size=32128, d_model=512, d_ff=2048, d_kv=64, num_heads=8, num_layers=6,
                    num_decoder_layers=6, feed_forward_proj="relu", dropout_rate=0.1, tie_word_embeddings=True,
                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)


def bench_torch(threads, steps, warmup):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(config()).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = lambda n: torch.cat([torch.randint(3, 32000, (BATCH, n - 1)), torch.ones(BATCH, 1, dtype=torch.long)], 1)
    times = []
    for step in range(warmup + steps):
        inputs, labels = ids(INPUT), ids(TARGET)
        t0 = time.perf_counter()
        optimizer.zero_grad()
        loss = model(input_ids=inputs, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[warmup:])


def bench_ours(t5, threads, steps, warmup):
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "model")
        os.makedirs(model_dir)
        config().save_pretrained(model_dir)
        with open(SPM, "rb") as src, open(os.path.join(model_dir, "spiece.model"), "wb") as dst:
            dst.write(src.read())
        data = os.path.join(tmp, "train.tsv")
        with open(data, "w") as f:
            for _ in range(BATCH * (steps + warmup)):
                # "▁10" … "▁40" are single pieces: n numbers + </s> = n + 1 tokens.
                source = " ".join(str(rng.randint(10, 40)) for _ in range(INPUT - 1))
                target = " ".join(str(rng.randint(10, 40)) for _ in range(TARGET - 1))
                f.write(f"{source}\t{target}\n")
        out = os.path.join(tmp, "out")
        subprocess.run([t5, "finetune", "--model", model_dir, "--from-scratch", "--train", data, "--out", out,
                        "--steps", str(steps + warmup), "--batch-size", str(BATCH), "--optimizer", "adamw",
                        "--max-input-tokens", str(INPUT), "--max-target-tokens", str(TARGET),
                        "--threads", str(threads), "--quiet"], check=True, stdout=subprocess.DEVNULL)
        records = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
        train = [r for r in records if r["type"] == "train"]
        assert all(r["input_tokens"] == BATCH * INPUT and r["target_tokens"] == BATCH * TARGET for r in train), \
            "the data did not tokenize to the intended lengths"
        return statistics.median(r["step_s"] for r in train[warmup:])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--t5", default=".build/release/t5")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    tokens = BATCH * (INPUT + TARGET)
    ours = bench_ours(args.t5, args.threads, args.steps, args.warmup)
    theirs = bench_torch(args.threads, args.steps, args.warmup)
    print(f"t5-small shape, batch {BATCH} x ({INPUT} input + {TARGET} target) tokens, AdamW, {args.threads} threads, "
          f"median of {args.steps} steps")
    print(f"  t5 finetune: {ours * 1000:8.1f} ms/step  {tokens / ours:8.0f} tokens/s")
    print(f"  PyTorch {torch.__version__}: {theirs * 1000:8.1f} ms/step  {tokens / theirs:8.0f} tokens/s")
    print(f"  ratio (ours / PyTorch tokens/s): {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
