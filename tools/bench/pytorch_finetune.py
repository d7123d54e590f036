#!/usr/bin/env python3
"""PyTorch's training-step speed on the shapes `t5 bench --finetune` and `t5 bench --pretrain` measure.

One step = forward with labels (train mode, dropout as in config.json) + backward + optimizer step + zero_grad.

Fine-tuning (default): a synthetic batch of --batch inputs of --input-len tokens (default 64) and targets of
--target-len tokens (default 32), the last one eos, token ids drawn uniformly from the tokenizer's ordinary
pieces. Every sequence has the same length, so there is no padding.

--pretrain: the batch of `t5 pretrain` / `t5 bench --pretrain`: --batch chunks of random ordinary pieces,
span-corrupted with run_t5_mlm_flax.py's numpy code (compute_input_and_target_lengths,
random_spans_noise_mask, create_sentinel_ids, filter_input_ids; --noise-density 0.15, --mean-span-length 3),
so every input is exactly --input-len tokens (default 128, as `t5 bench --pretrain`; t5 pretrain's is 512) and every target the length
compute_input_and_target_lengths gives (29 for 128, 114 for 512). The corruption is not timed (data loading), as in
`t5 bench --pretrain`.

Reports the median (and min, max) step time over --runs steps after --warmup steps, and
tokens/s = batch · (input_len + target_len) / median step time, under the keys finetune_* or pretrain_*.

--optimizer adamw (default): torch.optim.AdamW(lr=--lr), torch's other defaults. --optimizer adafactor:
transformers.optimization.Adafactor(lr=--lr, scale_parameter=False, relative_step=False, warmup_init=False),
its other defaults. `t5 bench --finetune|--pretrain --optimizer adamw|adafactor` runs the same step.

    python3 tools/bench/pytorch_finetune.py MODEL_DIR [--pretrain] [--optimizer adamw|adafactor] [--threads 2] [--runs 10] [--json]
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
from transformers import T5ForConditionalGeneration


def common_arguments(ap):
    """The options every training-step benchmark here shares (pytorch_distill.py too)."""
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--optimizer", choices=["adamw", "adafactor"], default="adamw")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object")


def load_model(path):
    """T5ForConditionalGeneration in fp32, with decoder_start_token_id on its config (labels need it)."""
    model = T5ForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
    # transformers 5 writes decoder_start_token_id to generation_config.json only; labels need it on the config.
    if getattr(model.config, "decoder_start_token_id", None) is None:
        model.config.decoder_start_token_id = model.generation_config.decoder_start_token_id or 0
    return model


def make_optimizer(model, name, lr):
    """(optimizer, its name in the text rows) for --optimizer."""
    if name == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(model.parameters(), lr=lr, scale_parameter=False, relative_step=False, warmup_init=False), "Adafactor"
    return torch.optim.AdamW(model.parameters(), lr=lr), "AdamW"


def piece_count(model, model_dir):
    """The tokenizer's piece count (ids 3 ..< it are ordinary pieces), else the model's vocab_size."""
    spm = os.path.join(model_dir, "spiece.model")
    if os.path.exists(spm):
        import sentencepiece

        return sentencepiece.SentencePieceProcessor(model_file=spm).get_piece_size()
    return model.config.vocab_size


def random_batch(model, model_dir, batch, input_len, target_len, seed):
    """Inputs and labels of ids uniform over the ordinary pieces, eos last, as `t5 bench --finetune` draws them."""
    pieces, eos = piece_count(model, model_dir), model.config.eos_token_id
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(3, pieces, (batch, input_len), generator=g)
    inputs[:, -1] = eos
    labels = torch.randint(3, pieces, (batch, target_len), generator=g)
    labels[:, -1] = eos
    return inputs, labels


# --- run_t5_mlm_flax.py (transformers examples/flax/language-modeling), the span corruption of --pretrain ---

def compute_input_and_target_lengths(inputs_length, noise_density, mean_noise_span_length):
    def lengths(tokens_length):
        num_noise_tokens = int(round(tokens_length * noise_density))
        num_nonnoise_tokens = tokens_length - num_noise_tokens
        num_noise_spans = int(round(num_noise_tokens / mean_noise_span_length))
        return num_nonnoise_tokens + num_noise_spans + 1, num_noise_tokens + num_noise_spans + 1

    tokens_length = inputs_length
    while lengths(tokens_length + 1)[0] <= inputs_length:
        tokens_length += 1
    inputs_length, targets_length = lengths(tokens_length)
    if noise_density == 0.5 and targets_length > inputs_length:
        tokens_length -= 1
        targets_length -= 1
    return tokens_length, targets_length


def random_spans_noise_mask(length, noise_density, mean_noise_span_length):
    num_noise_tokens = int(np.round(length * noise_density))
    num_noise_tokens = min(max(num_noise_tokens, 1), length - 1)
    num_noise_spans = max(int(np.round(num_noise_tokens / mean_noise_span_length)), 1)
    num_nonnoise_tokens = length - num_noise_tokens

    def random_segmentation(num_items, num_segments):
        mask_indices = np.arange(num_items - 1) < (num_segments - 1)
        np.random.shuffle(mask_indices)
        first_in_segment = np.pad(mask_indices, [[1, 0]])
        segment_id = np.cumsum(first_in_segment)
        _, segment_length = np.unique(segment_id, return_counts=True)
        return segment_length

    noise_span_lengths = random_segmentation(num_noise_tokens, num_noise_spans)
    nonnoise_span_lengths = random_segmentation(num_nonnoise_tokens, num_noise_spans)
    interleaved = np.reshape(np.stack([nonnoise_span_lengths, noise_span_lengths], axis=1), [num_noise_spans * 2])
    span_starts = np.cumsum(interleaved)[:-1]
    span_start_indicator = np.zeros((length,), dtype=np.int8)
    span_start_indicator[span_starts] = True
    span_num = np.cumsum(span_start_indicator)
    return np.equal(span_num % 2, 1)


def create_sentinel_ids(mask_indices, tokenizer_length):
    start_indices = mask_indices - np.roll(mask_indices, 1, axis=-1) * mask_indices
    start_indices[:, 0] = mask_indices[:, 0]
    sentinel_ids = np.where(start_indices != 0, np.cumsum(start_indices, axis=-1), start_indices)
    sentinel_ids = np.where(sentinel_ids != 0, (tokenizer_length - sentinel_ids), 0)
    sentinel_ids -= mask_indices - start_indices
    return sentinel_ids


def filter_input_ids(input_ids, sentinel_ids, eos):
    batch_size = input_ids.shape[0]
    input_ids_full = np.where(sentinel_ids != 0, sentinel_ids, input_ids)
    input_ids = input_ids_full[input_ids_full >= 0].reshape((batch_size, -1))
    return np.concatenate([input_ids, np.full((batch_size, 1), eos, dtype=input_ids.dtype)], axis=-1)


def span_corrupted_batch(model, model_dir, batch, input_len, noise_density, mean_span_length, seed):
    """FlaxDataCollatorForT5MLM.__call__ on `batch` chunks of random ordinary pieces: (inputs, labels)."""
    raw_len, target_len = compute_input_and_target_lengths(input_len, noise_density, mean_span_length)
    np.random.seed(seed)
    pieces = piece_count(model, model_dir)
    # The sentinels are the tokenizer's last ids (<extra_id_0> = len(tokenizer) - 1); the test tokenizer's
    # spiece.model may hold none, so they are placed after its pieces, inside the model's vocab_size.
    tokenizer_length = min(pieces + 100, model.config.vocab_size)
    chunks = np.random.randint(3, pieces, size=(batch, raw_len))
    mask = np.asarray([random_spans_noise_mask(raw_len, noise_density, mean_span_length) for _ in range(batch)])
    eos = model.config.eos_token_id
    inputs = filter_input_ids(chunks, create_sentinel_ids(mask.astype(np.int8), tokenizer_length), eos)
    labels = filter_input_ids(chunks, create_sentinel_ids((~mask).astype(np.int8), tokenizer_length), eos)
    assert inputs.shape == (batch, input_len) and labels.shape == (batch, target_len), (inputs.shape, labels.shape)
    return torch.from_numpy(inputs).long(), torch.from_numpy(labels).long()


def time_steps(step, warmup, runs):
    """`step` warmup times, then timed runs times: the list of step times in seconds."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def report(prefix, times, tokens, args, text_header, extra=None):
    """Prints the `<prefix>_step_ms` / `<prefix>_tokens_per_s` figures as JSON or text."""
    median = statistics.median(times)
    result = {
        f"{prefix}_step_ms": round(median * 1000, 3),
        f"{prefix}_step_ms_min": round(min(times) * 1000, 3),
        f"{prefix}_step_ms_max": round(max(times) * 1000, 3),
        f"{prefix}_tokens_per_s": round(tokens / median, 3),
        "optimizer": args.optimizer,
        "threads": args.threads,
        "torch": torch.__version__,
    }
    result.update(extra or {})
    if args.json:
        print(json.dumps(result))
    else:
        print(text_header)
        print(f"step: median {median * 1000:.1f} ms (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}) over {args.runs} runs")
        for key, value in (extra or {}).items():
            print(f"{key}: {value}")
        print(f"{prefix} tokens/s: {tokens / median:.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="checkpoint directory (config.json, model.safetensors, spiece.model)")
    common_arguments(ap)
    ap.add_argument("--pretrain", action="store_true", help="span-corrupted batch of t5 pretrain (keys pretrain_*)")
    ap.add_argument("--input-len", type=int, help="input length (default 64; 128 with --pretrain, as t5 bench --pretrain)")
    ap.add_argument("--target-len", type=int, default=32, help="target length (without --pretrain)")
    ap.add_argument("--noise-density", type=float, default=0.15, help="with --pretrain")
    ap.add_argument("--mean-span-length", type=float, default=3.0, help="with --pretrain")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = load_model(args.model)
    model.train()  # dropout as config.json's dropout_rate
    optimizer, optimizer_name = make_optimizer(model, args.optimizer, args.lr)
    if args.pretrain:
        inputs, labels = span_corrupted_batch(model, args.model, args.batch, args.input_len or 128,
                                              args.noise_density, args.mean_span_length, args.seed)
    else:
        inputs, labels = random_batch(model, args.model, args.batch, args.input_len or 64, args.target_len, args.seed)
    attention_mask = torch.ones_like(inputs)

    def step():
        loss = model(input_ids=inputs, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    times = time_steps(step, args.warmup, args.runs)
    batch, input_len, target_len = inputs.shape[0], inputs.shape[1], labels.shape[1]
    prefix = "pretrain" if args.pretrain else "finetune"
    report(prefix, times, batch * (input_len + target_len), args,
           f"PyTorch {torch.__version__}, {args.threads} threads, {prefix} batch {batch} x ({input_len} + {target_len}) tokens, {optimizer_name} lr {args.lr:g}")


if __name__ == "__main__":
    main()
