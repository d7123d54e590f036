#!/usr/bin/env python3
"""Convert a T5 checkpoint transformers can read into the directory layout the `t5` runtime loads.

    python3 tools/convert.py SRC_DIR OUT_DIR [--from-tf | --from-flax] [--dtype float32|float16|bfloat16]

SRC_DIR holds config.json plus pytorch_model.bin (or tf_model.h5 / flax_model.msgpack with the
flags), and spiece.model. OUT_DIR receives config.json, model.safetensors, spiece.model and
generation_config.json, exactly as `save_pretrained(..., safe_serialization=True)` writes them.
Needs pip's torch and transformers (and tensorflow or flax for those formats); the runtime never does.
"""
import argparse
import shutil
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src")
    parser.add_argument("out")
    parser.add_argument("--from-tf", action="store_true")
    parser.add_argument("--from-flax", action="store_true")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    args = parser.parse_args()

    import torch
    from transformers import T5ForConditionalGeneration

    src, out = Path(args.src), Path(args.out)
    if not (src / "config.json").is_file():
        print(f"convert: {src}/config.json: no such file", file=sys.stderr)
        return 1
    spiece = src / "spiece.model"
    if not spiece.is_file():
        print(f"convert: {spiece}: no such file (the runtime needs the SentencePiece model)", file=sys.stderr)
        return 1
    kwargs = {"dtype": getattr(torch, args.dtype)}
    if args.from_tf:
        kwargs["from_tf"] = True
    if args.from_flax:
        kwargs["from_flax"] = True
    model = T5ForConditionalGeneration.from_pretrained(src, **kwargs)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    shutil.copyfile(spiece, out / "spiece.model")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
