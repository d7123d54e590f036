#!/usr/bin/env python3
"""Write Tests/Fixtures/pretrain/ from the reference span corruption and PyTorch: nothing here is computed by
the Swift project.

    python3 tools/make_pretrain_fixtures.py

The reference functions below are transformers' examples/flax/language-modeling/run_t5_mlm_flax.py
(compute_input_and_target_lengths; FlaxDataCollatorForT5MLM.create_sentinel_ids in its current form,
`len(self.tokenizer) - sentinel_ids`; filter_input_ids; random_spans_noise_mask), copied verbatim except that
jax.ops.segment_sum(ones, segment_id) is np.bincount(segment_id) (the same sums, without jax). They are run
with numpy on fixed masks and chunks:

- span-corruption.json "lengths": compute_input_and_target_lengths and T5's random_spans_helper for several
  (input_length, density, span), with what random_spans_noise_mask then does on chunks of the helper's length
  (its noise-token and span counts, the lengths filter_input_ids gives, or that it fails);
- "sentinels": create_sentinel_ids + filter_input_ids of given ids under given masks (inputs and labels);
- "training": a span-corruption batch (three chunks, masks from random_spans_noise_mask) and the loss and
  3-step updates of T5ForConditionalGeneration on it, with the tiny t5-relu-tied model of
  Tests/Fixtures/training (tools/make_training_fixtures.py's loss and optimizers, reused).

Needs: numpy, torch, transformers (5.24.0), safetensors. Deterministic (fixed seeds, one thread).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from transformers import T5ForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_training_fixtures as training  # noqa: E402  (its loss, padding, optimizers and f32)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "Tests" / "Fixtures" / "pretrain"
MODEL = ROOT / "Tests" / "Fixtures" / "training" / "t5-relu-tied"
VOCAB = 128  # len(tokenizer) of the tiny model: sentinels 127, 126, ...
EOS = 1


def compute_input_and_target_lengths(inputs_length, noise_density, mean_noise_span_length):
    def _tokens_length_to_inputs_length_targets_length(tokens_length):
        num_noise_tokens = int(round(tokens_length * noise_density))
        num_nonnoise_tokens = tokens_length - num_noise_tokens
        num_noise_spans = int(round(num_noise_tokens / mean_noise_span_length))
        # inputs contain all nonnoise tokens, sentinels for all noise spans
        # and one EOS token.
        _input_length = num_nonnoise_tokens + num_noise_spans + 1
        _output_length = num_noise_tokens + num_noise_spans + 1
        return _input_length, _output_length

    tokens_length = inputs_length

    while _tokens_length_to_inputs_length_targets_length(tokens_length + 1)[0] <= inputs_length:
        tokens_length += 1

    inputs_length, targets_length = _tokens_length_to_inputs_length_targets_length(tokens_length)

    # minor hack to get the targets length to be equal to inputs length
    # which is more likely to have been set to a nice round number.
    if noise_density == 0.5 and targets_length > inputs_length:
        tokens_length -= 1
        targets_length -= 1
    return tokens_length, targets_length


def random_spans_helper(inputs_length, noise_density, mean_noise_span_length,
                        extra_tokens_per_span_inputs=1, extra_tokens_per_span_targets=1):
    """t5/data/preprocessors.py random_spans_helper (google-research/text-to-text-transfer-transformer
    e081111c, line 2646), logging dropped. Starts the search at inputs_length - 1 where transformers' copy
    starts at inputs_length."""
    def _tokens_length_to_inputs_length_targets_length(tokens_length):
        num_noise_tokens = int(round(tokens_length * noise_density))
        num_nonnoise_tokens = tokens_length - num_noise_tokens
        num_noise_spans = int(round(num_noise_tokens / mean_noise_span_length))
        # inputs contain all nonnoise tokens, sentinels for all noise spans
        # and one EOS token.
        return (
            num_nonnoise_tokens +
            num_noise_spans * extra_tokens_per_span_inputs + 1,
            num_noise_tokens +
            num_noise_spans * extra_tokens_per_span_targets + 1)

    tokens_length = inputs_length - 1
    while (_tokens_length_to_inputs_length_targets_length(tokens_length + 1)[0]
           <= inputs_length):
        tokens_length += 1
    inputs_length, targets_length = (
        _tokens_length_to_inputs_length_targets_length(tokens_length))
    # minor hack to get the targets length to be equal to inputs length
    # which is more likely to have been set to a nice round number.
    if noise_density == 0.5 and targets_length > inputs_length:
        tokens_length -= 1
        targets_length -= 1
    return tokens_length, targets_length


class Collator:
    """FlaxDataCollatorForT5MLM's three methods, with len(tokenizer) = VOCAB and eos_token_id = EOS."""

    def __init__(self, noise_density, mean_noise_span_length):
        self.noise_density = noise_density
        self.mean_noise_span_length = mean_noise_span_length

    def create_sentinel_ids(self, mask_indices):
        start_indices = mask_indices - np.roll(mask_indices, 1, axis=-1) * mask_indices
        start_indices[:, 0] = mask_indices[:, 0]

        sentinel_ids = np.where(start_indices != 0, np.cumsum(start_indices, axis=-1), start_indices)
        sentinel_ids = np.where(sentinel_ids != 0, (VOCAB - sentinel_ids), 0)
        sentinel_ids -= mask_indices - start_indices

        return sentinel_ids

    def filter_input_ids(self, input_ids, sentinel_ids):
        batch_size = input_ids.shape[0]

        input_ids_full = np.where(sentinel_ids != 0, sentinel_ids, input_ids)
        input_ids = input_ids_full[input_ids_full > 0].reshape((batch_size, -1))
        input_ids = np.concatenate(
            [input_ids, np.full((batch_size, 1), EOS, dtype=np.int32)], axis=-1
        )
        return input_ids

    def random_spans_noise_mask(self, length):
        orig_length = length

        num_noise_tokens = int(np.round(length * self.noise_density))
        # avoid degeneracy by ensuring positive numbers of noise and nonnoise tokens.
        num_noise_tokens = min(max(num_noise_tokens, 1), length - 1)
        num_noise_spans = int(np.round(num_noise_tokens / self.mean_noise_span_length))

        # avoid degeneracy by ensuring positive number of noise spans
        num_noise_spans = max(num_noise_spans, 1)
        num_nonnoise_tokens = length - num_noise_tokens

        # pick the lengths of the noise spans and the non-noise spans
        def _random_segmentation(num_items, num_segments):
            mask_indices = np.arange(num_items - 1) < (num_segments - 1)
            np.random.shuffle(mask_indices)
            first_in_segment = np.pad(mask_indices, [[1, 0]])
            segment_id = np.cumsum(first_in_segment)
            segment_length = np.bincount(segment_id)  # jax.ops.segment_sum(np.ones_like(segment_id), segment_id)
            return segment_length

        noise_span_lengths = _random_segmentation(num_noise_tokens, num_noise_spans)
        nonnoise_span_lengths = _random_segmentation(num_nonnoise_tokens, num_noise_spans)

        interleaved_span_lengths = np.reshape(
            np.stack([nonnoise_span_lengths, noise_span_lengths], axis=1), [num_noise_spans * 2]
        )
        span_starts = np.cumsum(interleaved_span_lengths)[:-1]
        span_start_indicator = np.zeros((length,), dtype=np.int8)
        span_start_indicator[span_starts] = True
        span_num = np.cumsum(span_start_indicator)
        is_noise = np.equal(span_num % 2, 1)

        return is_noise[:orig_length]

    def corrupt(self, ids, mask):
        """The collator's __call__ for one row: input_ids and labels."""
        input_ids = np.asarray([ids])
        mask_indices = np.asarray([mask])
        labels_mask = ~mask_indices
        input_ids_sentinel = self.create_sentinel_ids(mask_indices.astype(np.int8))
        labels_sentinel = self.create_sentinel_ids(labels_mask.astype(np.int8))
        return (self.filter_input_ids(input_ids, input_ids_sentinel)[0].tolist(),
                self.filter_input_ids(input_ids, labels_sentinel)[0].tolist())


LENGTH_SETTINGS = [
    (512, 0.15, 3.0), (568, 0.15, 3.0), (128, 0.15, 3.0), (114, 0.15, 3.0), (64, 0.5, 3.0), (512, 0.5, 3.0),
    (100, 0.3, 2.5), (256, 0.15, 1.0), (50, 0.15, 8.0), (24, 0.15, 3.0), (16, 0.15, 3.0), (10, 0.15, 3.0),
    (8, 0.15, 3.0), (6, 0.15, 3.0), (5, 0.15, 3.0), (4, 0.15, 3.0), (3, 0.15, 3.0), (12, 0.9, 1.0),
    (12, 0.05, 1.0), (40, 0.85, 1.5), (30, 0.99, 1.0), (1024, 0.15, 3.0),
]


def lengths_cases(rng):
    cases = []
    for inputs_length, density, span in LENGTH_SETTINGS:
        hf = compute_input_and_target_lengths(inputs_length, density, span)
        tokens_length, targets_length = random_spans_helper(inputs_length, density, span)
        case = dict(input_length=inputs_length, noise_density=density, mean_span_length=span,
                    transformers_tokens_length=hf[0], transformers_targets_length=hf[1],
                    tokens_length=tokens_length, targets_length=targets_length)
        collator = Collator(density, span)
        np.random.seed(1000 + inputs_length)
        try:
            mask = collator.random_spans_noise_mask(tokens_length)
            ids = rng.integers(2, 100, size=tokens_length)
            inputs, labels = collator.corrupt(ids, mask)
            starts = int(mask[0]) + int(np.sum(mask[1:] & ~mask[:-1]))
            case.update(ok=len(inputs) == inputs_length and len(labels) == targets_length,
                        noise_tokens=int(mask.sum()), noise_spans=starts,
                        corrupted_input_length=len(inputs), corrupted_target_length=len(labels))
        except Exception as e:  # the reference fails on degenerate settings
            case.update(ok=False, error=f"{type(e).__name__}: {e}")
        cases.append(case)
    return cases


def sentinel_cases(rng):
    masks = [
        [0, 0, 1, 1, 0, 1, 0, 0],
        [1, 1, 0, 0, 1, 0, 1, 1],
        [1, 0, 1, 0, 1, 0, 1, 0, 1],
        [0, 0, 0, 0, 0, 1],
        [1, 1, 1, 1, 1, 0],
        [0, 1],
    ]
    for length in [7, 12, 20, 33, 40, 64]:
        masks.append((rng.random(length) < 0.3).astype(int).tolist())
    cases = []
    collator = Collator(0.15, 3.0)
    for mask in masks:
        ids = rng.integers(2, 100, size=len(mask))
        inputs, labels = collator.corrupt(ids, np.asarray(mask, dtype=bool))
        cases.append(dict(ids=ids.tolist(), mask=[bool(m) for m in mask], input_ids=inputs, labels=labels))
    return cases


def training_case(rng):
    """Three chunks corrupted as the collator does, then PyTorch's loss and 3 optimizer steps on the batch."""
    input_length, density, span = 12, 0.15, 3.0
    tokens_length, targets_length = compute_input_and_target_lengths(input_length, density, span)
    assert (tokens_length, targets_length) == random_spans_helper(input_length, density, span)
    collator = Collator(density, span)
    np.random.seed(77)
    chunks, masks, inputs, targets = [], [], [], []
    for _ in range(3):
        ids = rng.integers(2, 100, size=tokens_length)
        mask = collator.random_spans_noise_mask(tokens_length)
        i, t = collator.corrupt(ids, mask)
        assert len(i) == input_length and len(t) == targets_length
        chunks.append(ids.tolist())
        masks.append([bool(m) for m in mask])
        inputs.append(i)
        targets.append(t)

    model = T5ForConditionalGeneration.from_pretrained(MODEL)
    model.config._attn_implementation = "eager"
    input_ids, attention_mask, labels = training.tensors(inputs, targets)
    model.train()
    loss, _ = training.loss_and_logits(model, input_ids, attention_mask, labels)
    case = dict(input_length=input_length, noise_density=density, mean_span_length=span,
                tokens_length=tokens_length, targets_length=targets_length, chunks=chunks, masks=masks,
                input_ids=inputs, labels=targets, loss=training.f32(loss.item()), optimizers={})
    for name in ["adafactor_relative", "adamw"]:
        o = training.OPTIMIZERS[name]
        m = T5ForConditionalGeneration.from_pretrained(MODEL)
        m.config._attn_implementation = "eager"
        m.train()
        opt = o["make"](m.parameters())
        losses = []
        for _ in range(training.STEPS):
            opt.zero_grad(set_to_none=True)
            l, _ = training.loss_and_logits(m, input_ids, attention_mask, labels)
            l.backward()
            opt.step()
            losses.append(training.f32(l.item()))
        file = f"after_{name}.safetensors"
        safetensors.torch.save_file(training.params_of(m), OUT / file)
        case["optimizers"][name] = dict(hyperparameters=o["hyperparameters"], steps=training.STEPS,
                                        losses_before_each_step=losses, file=file)
        training.log(f"   {name}: losses {losses}")
    return case


CORPUS_TEXT = (
    "\ufeffThe first document, its first line.\r\n"
    "Its second line, café and naïve.\n"
    "\n"
    "\n"
    "Second document: one line.   \n"
    "  \t \n"
    "Third document\n"
    "spans\n"
    "three lines.\n"
    "\n"
    "Last document, no newline at the end"
)


def documents(text, one_per_line):
    """The documented rule: a byte order mark dropped, lines end at \\n (a \\r before it dropped), blank
    lines (spaces and tabs only) separate documents, whose lines are joined by \\n; or each non-blank line a
    document."""
    text = text.lstrip("\ufeff")
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    if text.endswith("\n"):
        lines.pop()
    blank = [line.strip(" \t\r\n\v\f") == "" for line in lines]
    if one_per_line:
        return [line for line, b in zip(lines, blank) if not b]
    docs, current = [], []
    for line, b in zip(lines, blank):
        if b:
            if current:
                docs.append("\n".join(current))
            current = []
        else:
            current.append(line)
    if current:
        docs.append("\n".join(current))
    return docs


def corpus_files():
    """Small corpora in every format, broken ones too, and the documents each must give."""
    out = OUT / "corpus"
    out.mkdir(parents=True, exist_ok=True)
    raw = CORPUS_TEXT.encode("utf-8")
    (out / "docs.txt").write_bytes(raw)
    docs = documents(CORPUS_TEXT, False)
    jsonl = "".join(json.dumps({"id": i, "text": d}) + ("\n\n" if i == 1 else "\n") for i, d in enumerate(docs))
    (out / "docs.jsonl").write_text(jsonl)

    def gz(data):
        return gzip.compress(data, compresslevel=9, mtime=0)

    (out / "docs.txt.gz").write_bytes(gz(raw))
    (out / "docs.jsonl.gz").write_bytes(gz(jsonl.encode()))
    half = len(raw) // 2
    (out / "two-members.txt.gz").write_bytes(gz(raw[:half]) + gz(raw[half:]))
    whole = gz(raw)
    (out / "truncated.txt.gz").write_bytes(whole[: len(whole) // 2])
    damaged = bytearray(whole)
    for i in range(20, 40):
        damaged[i] ^= 0x5A
    (out / "corrupt.txt.gz").write_bytes(bytes(damaged))
    bad = b"good line\nanother good line\nbad \xff byte here\n"
    (out / "bad-utf8.txt").write_bytes(bad)
    (out / "empty.txt").write_bytes(b"\n  \n\n")
    return {
        "docs": docs,
        "one_per_line": documents(CORPUS_TEXT, True),
        "bad_utf8": {"file": "bad-utf8.txt", "line": 3, "byte_offset": bad.index(b"\xff")},
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)
    reference = {
        "generator": "tools/make_pretrain_fixtures.py",
        "vocab": VOCAB,
        "eos": EOS,
        "lengths": lengths_cases(rng),
        "sentinels": sentinel_cases(rng),
        "training": training_case(rng),
        "corpus": corpus_files(),
    }
    (OUT / "span-corruption.json").write_text(json.dumps(reference, indent=1) + "\n")
    training.log(f"wrote {OUT}")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
