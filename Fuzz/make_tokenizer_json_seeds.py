#!/usr/bin/env python3
"""Small tokenizer.json seeds for the `tokenizer-json` fuzz target, written by transformers from the spiece seeds.

T5TokenizerFast.from_pretrained(a directory holding Fuzz/seeds/spiece/spiece-12-*.model).save_pretrained, then the
tokenizer.json written compactly (a 12-piece vocabulary plus the 100 sentinels):

    t5-12-nocharsmap.json           as saved, added_tokens included
    t5-12-nocharsmap-bare.json      without added_tokens (the loader adds <pad>, </s>, <unk> and the sentinels)
    t5-12-charsmap-bare.json        with the seed's cut precompiled charsmap, without added_tokens
    t5-12-legacy-metaspace.json     the bare file with Metaspace as older tokenizers wrote it (add_prefix_space: true)

Run by hand (needs pip's transformers, sentencepiece):  python3 Fuzz/make_tokenizer_json_seeds.py
(writes Fuzz/seeds/tokenizer-json/; the output is committed)
"""
import json
import shutil
import tempfile
from pathlib import Path

from transformers import T5TokenizerFast

FUZZ = Path(__file__).resolve().parent
OUT = FUZZ / "seeds" / "tokenizer-json"


def saved(spiece: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "source", Path(tmp) / "target"
        source.mkdir()
        shutil.copy(spiece, source / "spiece.model")
        T5TokenizerFast.from_pretrained(str(source)).save_pretrained(str(target))
        return json.loads((target / "tokenizer.json").read_text(encoding="utf-8"))


def write(name: str, tokenizer: dict):
    (OUT / name).write_text(json.dumps(tokenizer, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    plain = saved(FUZZ / "seeds" / "spiece" / "spiece-12-nocharsmap.model")
    charsmap = saved(FUZZ / "seeds" / "spiece" / "spiece-12-charsmap.model")
    write("t5-12-nocharsmap.json", plain)
    bare = dict(plain, added_tokens=[])
    write("t5-12-nocharsmap-bare.json", bare)
    write("t5-12-charsmap-bare.json", dict(charsmap, added_tokens=[]))
    legacy = json.loads(json.dumps(bare))
    legacy["pre_tokenizer"]["pretokenizers"][1] = {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True}
    legacy["decoder"] = {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True}
    write("t5-12-legacy-metaspace.json", legacy)
    for path in sorted(OUT.iterdir()):
        print(path.name, path.stat().st_size)


if __name__ == "__main__":
    main()
