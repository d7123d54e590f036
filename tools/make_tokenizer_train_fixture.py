#!/usr/bin/env python3
"""Fixture for `t5 tokenizer train`: a corpus, the spiece.model our command trains on it, and the ids
transformers' T5Tokenizer gives with that model.

    python3 tools/make_tokenizer_train_fixture.py [--t5 .build/release/t5]

The corpus is the GNU GPL version 3 text (/usr/share/common-licenses/GPL-3, Debian's base-files) with a few
lines of Spanish and German added so the table has accented letters. `t5 tokenizer train --vocab-size 300
--threads 1` trains on it; T5Tokenizer.from_pretrained(that directory) (transformers 5.24, the
SentencePiece-backed slow tokenizer, legacy=True as T5's checkpoints ship) then encodes TEXTS. The test
trains again in-process and must get the same table (so the same ids) and transformers' ids.
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile

from transformers import T5Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "Fixtures", "tokenizer-train")
EXTRA = [
    "La casa es maravillosa y el jardín también.",
    "¿Dónde está la estación? Está allí, a la derecha.",
    "Das Haus ist schön, und die Straße ist ruhig.",
    "Über den Bergen wohnt die Freiheit; Größe zählt nicht.",
]
TEXTS = [
    "This License applies to any program or other work.",
    "You may convey a work based on the Program.",
    "La casa es maravillosa.",
    "Das Haus ist schön.",
    "  extra   spaces\tand a tab ",
    "Numbers 12345 and 3.14, symbols #@! and émojis ☃",
    "translate English to Spanish: The house is wonderful.",
    "a sentinel <extra_id_0> in the middle <extra_id_1>",
    "",
    "ÜBER ALLES ﬁ ligature and full-width ＡＢＣ",
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--t5", default=os.path.join(HERE, "..", ".build", "release", "t5"))
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    lines = open("/usr/share/common-licenses/GPL-3", encoding="utf-8").read().splitlines()
    corpus = os.path.join(OUT, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(lines + EXTRA * 5) + "\n")
    work = tempfile.mkdtemp()
    try:
        model_dir = os.path.join(work, "tok")
        subprocess.run([args.t5, "tokenizer", "train", "--text", corpus, "--vocab-size", "300", "--threads", "1",
                        "--out", model_dir, "--quiet"], check=True)
        shutil.copy(os.path.join(model_dir, "spiece.model"), os.path.join(OUT, "spiece.model"))
        tokenizer = T5Tokenizer.from_pretrained(model_dir, legacy=True)
        cases = [{"text": t, "ids": tokenizer(t).input_ids} for t in TEXTS]
        with open(os.path.join(OUT, "ids.json"), "w", encoding="utf-8") as f:
            json.dump({"vocab_size": 300, "tokenizer_len": len(tokenizer), "cases": cases}, f, indent=1, ensure_ascii=False)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
