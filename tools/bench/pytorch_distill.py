#!/usr/bin/env python3
"""PyTorch's distillation-step speed on the shape `t5 bench --distill --teacher TEACHER --model STUDENT` measures.

One step, as `t5 distill` runs it (DistillationObjective; Shleifer & Rush 2020's distillation.py):
  - the teacher in eval mode under torch.no_grad(): one forward on the decoder inputs the labels give
    (decoder_start + labels[:-1], no loss computed; its encoder once per batch),
  - the student in train mode (dropout as its config.json): forward with labels,
  - loss = alpha · CE(student, labels) + (1 − alpha) · T² · KL(softmax(teacher / T) ‖ softmax(student / T)),
    CE the model's own mean over the target tokens, KL summed over the vocabulary and averaged over the
    target tokens (alpha 0.2, T 2: t5 distill's defaults),
  - backward, optimizer step, zero_grad.

The batch is pytorch_finetune.py's (and `t5 bench --finetune`'s): --batch inputs of --input-len tokens and
targets of --target-len tokens, eos last, the other ids uniform over the tokenizer's ordinary pieces.
Reports distill_step_ms (median, min, max over --runs after --warmup), the teacher forward's median
(distill_teacher_ms) and distill_tokens_per_s = batch · (input_len + target_len) / median step time.

    python3 tools/bench/pytorch_distill.py TEACHER_DIR STUDENT_DIR [--optimizer adamw|adafactor] [--threads 2] [--runs 10] [--json]
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from pytorch_finetune import common_arguments, load_model, make_optimizer, random_batch, report, time_steps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("teacher", help="teacher checkpoint directory")
    ap.add_argument("student", help="student checkpoint directory (the teacher's vocabulary)")
    common_arguments(ap)
    ap.add_argument("--input-len", type=int, default=64)
    ap.add_argument("--target-len", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=0.2)
    ap.add_argument("--temperature", type=float, default=2.0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    teacher, student = load_model(args.teacher), load_model(args.student)
    if teacher.config.vocab_size != student.config.vocab_size:
        raise SystemExit(f"the student's vocab_size {student.config.vocab_size} differs from the teacher's {teacher.config.vocab_size}")
    teacher.eval()
    student.train()  # dropout as the student's config.json
    optimizer, optimizer_name = make_optimizer(student, args.optimizer, args.lr)
    inputs, labels = random_batch(student, args.student, args.batch, args.input_len, args.target_len, args.seed)
    attention_mask = torch.ones_like(inputs)
    tokens_in_targets = labels.numel()  # no padding: every label counts
    alpha, t = args.alpha, args.temperature
    teacher_times = []

    # The teacher reads the decoder inputs labels give (decoder_start + labels[:-1]) without computing a loss.
    decoder_input_ids = teacher._shift_right(labels)

    def step():
        t0 = time.perf_counter()
        with torch.no_grad():
            teacher_logits = teacher(input_ids=inputs, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids).logits
        teacher_times.append(time.perf_counter() - t0)
        out = student(input_ids=inputs, attention_mask=attention_mask, labels=labels)
        vocab = out.logits.shape[-1]
        kl = F.kl_div(F.log_softmax(out.logits.reshape(-1, vocab) / t, dim=-1),
                      F.log_softmax(teacher_logits.reshape(-1, vocab) / t, dim=-1),
                      reduction="sum", log_target=True) / tokens_in_targets
        loss = alpha * out.loss + (1 - alpha) * t * t * kl
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    times = time_steps(step, args.warmup, args.runs)
    teacher_median = statistics.median(teacher_times[args.warmup:])
    batch, input_len, target_len = inputs.shape[0], inputs.shape[1], labels.shape[1]
    report("distill", times, batch * (input_len + target_len), args,
           f"PyTorch {torch.__version__}, {args.threads} threads, distill batch {batch} x ({input_len} + {target_len}) tokens, "
           f"teacher {teacher.config.num_layers}+{teacher.config.num_decoder_layers} layers, student "
           f"{student.config.num_layers}+{student.config.num_decoder_layers}, alpha {alpha:g}, T {t:g}, {optimizer_name} lr {args.lr:g}",
           extra={"distill_teacher_ms": round(teacher_median * 1000, 3)})


if __name__ == "__main__":
    main()
