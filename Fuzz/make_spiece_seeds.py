#!/usr/bin/env python3
"""Small spiece.model seeds for the `spiece` and `tokenizer` fuzz targets, cut from Tests/Fixtures/spm/spiece.model.

The fixture is 245 KB, almost all of it the nmt_nfkc precompiled charsmap, and libFuzzer runs far more
executions on small inputs. These keep the fixture's protobuf layout (pieces, trainer_spec, normalizer_spec
with its other fields) and change only how many pieces there are and how much of the charsmap is kept:

    spiece-384-nocharsmap.model   every piece, no charsmap (identity normalization)
    spiece-12-nocharsmap.model    <pad> </s> <unk> and 9 more pieces
    spiece-12-charsmap.model      the same with a cut charsmap: the first 1024 trie units and 512 pool bytes
    regression-nul-piece.model    <pad> </s> <unk> "\\0a" "a": a piece starting with NUL makes SentencePiece throw,
                                  and the CSentencePiece shim leaked the processor then (TokenizerTests has it too)

    python3 Fuzz/make_spiece_seeds.py        (writes Fuzz/seeds/spiece/; the output is committed)
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SOURCE = os.path.join(ROOT, "Tests", "Fixtures", "spm", "spiece.model")
OUT = os.path.join(ROOT, "Fuzz", "seeds", "spiece")


def varint(data, i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def encode_varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def fields(data):
    """(field, wire type, raw bytes of the whole field) in order; only the wire types spiece.model uses."""
    i, out = 0, []
    while i < len(data):
        start = i
        key, i = varint(data, i)
        wire = key & 7
        if wire == 0:
            _, i = varint(data, i)
        elif wire == 2:
            length, i = varint(data, i)
            i += length
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError(f"wire type {wire}")
        out.append((key >> 3, wire, data[start:i]))
    return out


def payload(raw):
    _, i = varint(raw, 0)
    _, i = varint(raw, i)
    return raw[i:]


def length_delimited(field, body):
    return encode_varint(field << 3 | 2) + encode_varint(len(body)) + body


def model(pieces, charsmap):
    data = open(SOURCE, "rb").read()
    out, kept = bytearray(), 0
    for field, wire, raw in fields(data):
        if field == 1:
            if kept < pieces:
                out += raw
                kept += 1
        elif field == 3:
            spec = bytearray()
            for sfield, _, sraw in fields(payload(raw)):
                if sfield != 2:
                    spec += sraw
                elif charsmap is not None:
                    spec += length_delimited(2, charsmap(payload(sraw)))
            out += length_delimited(3, bytes(spec))
        else:
            out += raw
    return bytes(out)


def cut_charsmap(blob, units=1024, pool=512):
    trie_size = int.from_bytes(blob[:4], "little")
    trie = blob[4:4 + 4 * units]
    replacements = blob[4 + trie_size:4 + trie_size + pool]
    replacements = replacements[:replacements.rindex(0) + 1]  # whole NUL-terminated strings only
    return len(trie).to_bytes(4, "little") + trie + replacements


def piece(text, score, kind):
    body = length_delimited(1, text) + b"\x15" + struct.pack("<f", score) + b"\x18" + bytes([kind])
    return length_delimited(1, body)


os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "regression-nul-piece.model"), "wb") as f:
    f.write(piece(b"<pad>", 0, 3) + piece(b"</s>", 0, 3) + piece(b"<unk>", 0, 2) + piece(b"\x00a", -1, 1) + piece(b"a", -1, 1))
for name, pieces, charsmap in [
    ("spiece-384-nocharsmap.model", 384, None),
    ("spiece-12-nocharsmap.model", 12, None),
    ("spiece-12-charsmap.model", 12, cut_charsmap),
]:
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(model(pieces, charsmap))
