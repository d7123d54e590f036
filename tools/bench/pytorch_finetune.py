#!/usr/bin/env python3
"""PyTorch's fine-tuning speed on the shape `t5 bench --finetune` measures.

One step = forward with labels (train mode, dropout as in config.json) + backward + optimizer step + zero_grad,
on a synthetic batch of --batch inputs of --input-len tokens and targets of --target-len tokens (the last one
eos), token ids drawn uniformly from the tokenizer's ordinary pieces. Every sequence has the same length, so
there is no padding. Reports the median (and min, max) step time over --runs steps after --warmup steps, and
tokens/s = batch · (input_len + target_len) / median step time.

--optimizer adamw (default): torch.optim.AdamW(lr=--lr), torch's other defaults. --optimizer adafactor:
transformers.optimization.Adafactor(lr=--lr, scale_parameter=False, relative_step=False, warmup_init=False),
its other defaults. `t5 bench --finetune --optimizer adamw|adafactor` runs the same step.

    python3 tools/bench/pytorch_finetune.py MODEL_DIR [--optimizer adamw|adafactor] [--threads 2] [--runs 10] [--json]
"""
import argparse
import json
import os
import statistics
import time

import torch
from transformers import T5ForConditionalGeneration


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="checkpoint directory (config.json, model.safetensors, spiece.model)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--input-len", type=int, default=64)
    ap.add_argument("--target-len", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--optimizer", choices=["adamw", "adafactor"], default="adamw")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = T5ForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32)
    # transformers 5 writes decoder_start_token_id to generation_config.json only; labels need it on the config.
    if getattr(model.config, "decoder_start_token_id", None) is None:
        model.config.decoder_start_token_id = model.generation_config.decoder_start_token_id or 0
    model.train()  # dropout as config.json's dropout_rate
    if args.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        optimizer = Adafactor(model.parameters(), lr=args.lr, scale_parameter=False, relative_step=False, warmup_init=False)
        optimizer_name = "Adafactor"
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
        optimizer_name = "AdamW"

    # Token ids from the tokenizer's ordinary pieces (3 ..< piece count), as `t5 bench --finetune` draws them.
    pieces = model.config.vocab_size
    spm = os.path.join(args.model, "spiece.model")
    if os.path.exists(spm):
        import sentencepiece
        pieces = sentencepiece.SentencePieceProcessor(model_file=spm).get_piece_size()
    eos = model.config.eos_token_id
    g = torch.Generator().manual_seed(args.seed)
    inputs = torch.randint(3, pieces, (args.batch, args.input_len), generator=g)
    inputs[:, -1] = eos
    labels = torch.randint(3, pieces, (args.batch, args.target_len), generator=g)
    labels[:, -1] = eos
    attention_mask = torch.ones_like(inputs)

    def step():
        loss = model(input_ids=inputs, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    tokens = args.batch * (args.input_len + args.target_len)
    result = {
        "finetune_step_ms": round(median * 1000, 3),
        "finetune_step_ms_min": round(min(times) * 1000, 3),
        "finetune_step_ms_max": round(max(times) * 1000, 3),
        "finetune_tokens_per_s": round(tokens / median, 3),
        "optimizer": args.optimizer,
        "threads": args.threads,
        "torch": torch.__version__,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"PyTorch {torch.__version__}, {args.threads} threads, batch {args.batch} x ({args.input_len} + {args.target_len}) tokens, {optimizer_name} lr {args.lr:g}")
        print(f"step: median {median * 1000:.1f} ms (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}) over {args.runs} runs")
        print(f"finetune tokens/s: {tokens / median:.1f}")


if __name__ == "__main__":
    main()
