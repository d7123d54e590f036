#!/usr/bin/env python3
"""Check a student written by `t5 distill --student-init teacher` (OUT/student-init) against its teacher with
transformers: the student loads as T5ForConditionalGeneration / UMT5ForConditionalGeneration with nothing missing
or unexpected, and every tensor equals the teacher's tensor it was copied from, bit for bit (block i of a stack from
the teacher block config.init_metadata names; T5's relative position bias, kept in block 0, from teacher block 0).

    python3 tools/check_student.py TEACHER_DIR OUT/student-init

Prints one line per stack and exits non-zero on any difference.
"""

import sys

import torch
from transformers import AutoModelForSeq2SeqLM


def main(teacher_dir: str, student_dir: str) -> int:
    teacher = AutoModelForSeq2SeqLM.from_pretrained(teacher_dir)
    student, info = AutoModelForSeq2SeqLM.from_pretrained(student_dir, output_loading_info=True)
    problems = [f"{k}: {v}" for k, v in info.items() if v]
    meta = student.config.init_metadata
    copied = {"encoder": meta["copied_encoder_layers"], "decoder": meta["copied_decoder_layers"]}
    per_block_bias = student.config.model_type == "umt5"
    t_state = teacher.state_dict()
    for key, value in student.state_dict().items():
        source = key
        for stack, layers in copied.items():
            prefix = f"{stack}.block."
            if key.startswith(prefix):
                block, rest = key[len(prefix):].split(".", 1)
                bias = rest.endswith("relative_attention_bias.weight") and not per_block_bias
                source = f"{prefix}{0 if bias else layers[int(block)]}.{rest}"
        if not torch.equal(value, t_state[source]):
            problems.append(f"{key} differs from the teacher's {source}")
    for stack, layers in copied.items():
        print(f"{stack}: {len(layers)} blocks copied from teacher blocks {layers}")
    print(f"{len(student.state_dict())} tensors checked; " + ("OK" if not problems else "; ".join(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
