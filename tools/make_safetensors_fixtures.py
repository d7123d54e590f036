#!/usr/bin/env python3
"""Writes Tests/Fixtures/safetensors/: tiny safetensors files made by the Python `safetensors`
library, and expected.json with the values numpy reads back from them.

Nothing here comes from this project's own writer: the Swift tests read these files and must
get exactly expected.json, and the Swift writer must reproduce the writer_reference_* files byte
for byte. Values are stored as fp32 bit patterns (uint32) so NaN payloads, -0 and subnormals are
compared exactly.

Needs numpy and safetensors. PyTorch is optional: numpy has no bfloat16, so BF16 files are made
by saving uint16 bit patterns and renaming the dtype in the header; when torch is importable the
script also checks that safetensors.torch writes the very same bytes and reads the same values,
and takes the reference fp32 -> bf16 rounding from torch (else from the numpy formula below,
recorded in expected.json as "bf16_source").

    python3 tools/make_safetensors_fixtures.py
"""

import json
import pathlib
import struct

import numpy as np
import safetensors
from safetensors.numpy import load_file, save, save_file

try:
    import torch
    import safetensors.torch as st_torch
except Exception:  # torch missing or half-installed: fall back to numpy-only references
    torch = None

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "safetensors"
META = {"format": "pt"}  # what transformers' save_pretrained passes
rng = np.random.default_rng(20240607)


def bits_of(array):
    """fp32 bit patterns of `array` converted to float32 by numpy, row-major."""
    return np.ascontiguousarray(np.asarray(array).astype(np.float32)).view(np.uint32).ravel().tolist()


def f32(values, shape=None):
    a = np.asarray(values, dtype=np.float32)
    return a.reshape(shape) if shape is not None else a


def f32_from_bits(bits):
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def describe_file(path):
    """What safetensors + numpy read from `path`: dtype, shape and fp32 bits of each tensor."""
    tensors = {}
    with safetensors.safe_open(str(path), framework="numpy") as f:
        metadata = f.metadata()
        for key in f.keys():
            s = f.get_slice(key)
            dtype, shape = s.get_dtype(), s.get_shape()
            entry = {"dtype": dtype, "shape": shape}
            if dtype in ("F32", "F16"):
                entry["bits"] = bits_of(f.get_tensor(key))
            tensors[key] = entry
    return {"metadata": metadata, "tensors": tensors}


def header_of(blob):
    n = struct.unpack("<Q", blob[:8])[0]
    return n, json.loads(blob[8 : 8 + n])


def build(header, data, pad=True):
    """A safetensors blob from a header dict (serialized compactly, like serde_json) and data."""
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def bf16_round_numpy(x):
    """fp32 -> bf16 bits, round to nearest even, NaN -> 0x7FC0 (c10::BFloat16's scalar rule)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    r[np.isnan(np.asarray(x, dtype=np.float32))] = 0x7FC0
    return r


def save_bf16(path, tensors_u16):
    """Saves uint16 bit patterns as a BF16 file: save as U16 with the library, rename the dtype.

    Every tensor is U16, so the library's (dtype, name) order equals name order for BF16 too and
    the data layout stays valid; safetensors re-reads the result to prove it.
    """
    blob = save(tensors_u16, metadata=META)
    n, header = header_of(blob)
    for key, entry in header.items():
        if key != "__metadata__":
            assert entry["dtype"] == "U16"
            entry["dtype"] = "BF16"
    out = build(header, blob[8 + n :])
    path.write_bytes(out)
    parsed = dict(safetensors.deserialize(out))
    assert all(parsed[k]["dtype"] == "bf16" or parsed[k]["dtype"] == "BF16" for k in tensors_u16), parsed
    if torch is not None:
        tt = {k: torch.from_numpy(v.astype(np.int16)).view(torch.bfloat16) for k, v in tensors_u16.items()}
        assert st_torch.save(tt, metadata=META) == out, "safetensors.torch writes different BF16 bytes"
        back = st_torch.load_file(str(path))
        for k, v in tensors_u16.items():
            got = back[k].float().numpy().view(np.uint32)
            want = (v.astype(np.uint32) << 16).ravel()
            ok = (got.ravel() == want) | (np.isnan(got.view(np.float32).ravel()) & np.isnan(want.view(np.float32)))
            assert ok.all(), k


def main():
    np.seterr(over="ignore")  # fp16 rounding inputs overflow to inf on purpose
    OUT.mkdir(parents=True, exist_ok=True)
    expected = {
        "generator": {
            "script": "tools/make_safetensors_fixtures.py",
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
            "torch": torch.__version__ if torch is not None else None,
        },
        "files": {},
    }

    # 1. F32 of several shapes: scalar, empty, odd lengths, 3-D, special values incl. a NaN payload.
    specials = f32_from_bits([0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7FC00001,
                              0xFFC00000, 0x00000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0x3F800000,
                              0xBF800000])
    save_file({
        "encoder.weight": f32(rng.standard_normal((3, 4))),
        "bias": f32(rng.standard_normal(5)),
        "scalar": f32(2.5),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "cube": f32(rng.standard_normal((2, 3, 4))),
        "specials": specials,
    }, str(OUT / "f32.safetensors"), metadata=META)

    # 2. F16, including every class of value (the 15-element vector exercises the SIMD tail).
    half_specials = np.array([0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x7E00,
                              0x7E01, 0xFE00, 0x3C00, 0xBC00, 0x3555, 0x8001], dtype=np.uint16).view(np.float16)
    save_file({
        "half.matrix": rng.standard_normal((4, 5)).astype(np.float16),
        "half.specials": half_specials,
        "half.odd": rng.standard_normal(7).astype(np.float16),
        "half.long": rng.standard_normal((3, 11)).astype(np.float16),
    }, str(OUT / "f16.safetensors"), metadata=META)

    # 3. BF16 (see save_bf16).
    bf16_specials = np.array([0x0000, 0x8000, 0x0001, 0x007F, 0x0080, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0,
                              0x3F80, 0xBF80, 0x3EAB, 0xC2F7], dtype=np.uint16)
    bf16_tensors = {
        "bf16.matrix": bf16_round_numpy(f32(rng.standard_normal((3, 4)))),
        "bf16.specials": bf16_specials,
        "bf16.long": bf16_round_numpy(f32(rng.standard_normal(19))),
    }
    save_bf16(OUT / "bf16.safetensors", bf16_tensors)

    # 4. Mixed dtypes; I32 and U8 are valid safetensors but not convertible to fp32.
    save_file({
        "m.float": f32(rng.standard_normal((2, 3))),
        "m.half": rng.standard_normal(3).astype(np.float16),
        "m.int": np.arange(6, dtype=np.int32).reshape(2, 3),
        "m.byte": np.arange(5, dtype=np.uint8),
    }, str(OUT / "mixed.safetensors"), metadata=META)

    # 5. Misaligned F32 data, which the format allows (only the offsets must tile the data):
    #    (a) F16 data placed first so the F32 tensor starts at data byte 6;
    #    (b) a header that is not padded to a multiple of 8.
    half = rng.standard_normal(3).astype(np.float16)
    flt = f32(rng.standard_normal((2, 3)))
    blob = save({"a.half": half, "b.float": flt}, metadata=META)
    n, header = header_of(blob)
    data = blob[8 + n :]
    hb, fb = header["a.half"]["data_offsets"], header["b.float"]["data_offsets"]
    reordered = data[hb[0] : hb[1]] + data[fb[0] : fb[1]]
    header["a.half"]["data_offsets"] = [0, hb[1] - hb[0]]
    header["b.float"]["data_offsets"] = [hb[1] - hb[0], hb[1] - hb[0] + fb[1] - fb[0]]
    (OUT / "unaligned.safetensors").write_bytes(build(header, reordered))
    for unpadded_key in ("w", "ww", "www"):  # pick a name that leaves the header length odd
        blob = save({unpadded_key: flt}, metadata=META)
        n, header = header_of(blob)
        unpadded = build(header, blob[8 + n :], pad=False)
        if struct.unpack("<Q", unpadded[:8])[0] % 4 != 0:
            break
    (OUT / "unpadded.safetensors").write_bytes(unpadded)
    for name, want in (("unaligned.safetensors", {"a.half": half, "b.float": flt}), ("unpadded.safetensors", {unpadded_key: flt})):
        got = load_file(str(OUT / name))
        assert all(np.array_equal(got[k], v) for k, v in want.items()), name

    # 6. A sharded model directory laid out like save_pretrained's, plus one tensor a shard holds
    #    that the index does not list (transformers still loads it).
    shard_dir = OUT / "sharded"
    shard_dir.mkdir(exist_ok=True)
    shards = {
        "model-00001-of-00002.safetensors": {
            "shared.weight": f32(rng.standard_normal((6, 4))),
            "encoder.final_layer_norm.weight": f32(rng.standard_normal(4)),
        },
        "model-00002-of-00002.safetensors": {
            "decoder.final_layer_norm.weight": f32(rng.standard_normal(4)),
            "decoder.block.0.layer.0.SelfAttention.q.weight": rng.standard_normal((4, 4)).astype(np.float16),
            "extra.unindexed": f32([1, 2, 3]),
        },
    }
    weight_map, total = {}, 0
    for shard, tensors in shards.items():
        save_file(tensors, str(shard_dir / shard), metadata=META)
        for key, value in tensors.items():
            total += value.nbytes
            if key != "extra.unindexed":
                weight_map[key] = shard
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (shard_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")

    for name in ["f32.safetensors", "f16.safetensors", "mixed.safetensors", "unaligned.safetensors", "unpadded.safetensors"]:
        expected["files"][name] = describe_file(OUT / name)
    bf16_described = {"metadata": META, "tensors": {}}
    for key, u16 in bf16_tensors.items():
        bf16_described["tensors"][key] = {
            "dtype": "BF16",
            "shape": list(u16.shape),
            "bits": (u16.astype(np.uint32) << 16).ravel().tolist(),
        }
    expected["files"]["bf16.safetensors"] = bf16_described
    for shard in shards:
        expected["files"]["sharded/" + shard] = describe_file(shard_dir / shard)

    # 7. Writer references: what the library writes for given fp32 inputs. Keys exercise sorting
    #    (by UTF-8 bytes) and serde_json's escaping; shapes include a scalar and an empty tensor.
    inputs = {
        "zeta": f32(rng.standard_normal((2, 2))),
        "alpha.weight": f32(rng.standard_normal(3)),
        "Upper": f32(rng.standard_normal((1, 3, 1))),
        "scalar": f32(-1.25),
        "empty": np.zeros((2, 0), dtype=np.float32),
        "tab\tand \"quote\"": f32([0.5]),
        "\u00fcnicode": f32([1, -0.0, np.inf]),
        "specials": specials,
    }
    save_file(inputs, str(OUT / "writer_reference_f32.safetensors"), metadata=META)
    rounding_inputs = f32_from_bits(
        [0x3F800000, 0x3F801000, 0x3F803000, 0x33000000, 0x33C00000, 0x477FF000, 0x477FEFFF, 0x501502F9,
         0x2EDBE6FF, 0x80000000, 0x7F800000, 0xFF800000, 0x00000001, 0x38800000, 0x387FE000, 0x7F7FFFFF,
         0x3F808000, 0x3F818000, 0x7F7F8000, 0x7F7F7FFF, 0x3EAAAAAB, 0xC2F6E979, 0x00400000, 0x807FFFFF]
        + f32(rng.standard_normal(40) * 100).view(np.uint32).tolist())
    half_inputs = {"r": rounding_inputs, "r.matrix": f32(rng.standard_normal((3, 5)))}
    save_file({k: v.astype(np.float16) for k, v in half_inputs.items()},
              str(OUT / "writer_reference_f16.safetensors"), metadata=META)
    expected["writer_reference"] = {
        "F32": {"file": "writer_reference_f32.safetensors", "metadata": META,
                "inputs": {k: {"shape": list(v.shape), "bits": bits_of(v)} for k, v in inputs.items()}},
        "F16": {"file": "writer_reference_f16.safetensors", "metadata": META,
                "inputs": {k: {"shape": list(v.shape), "bits": bits_of(v)} for k, v in half_inputs.items()}},
    }

    # 8. fp32 -> 16-bit rounding references (NaN left out: PyTorch's vectorized and scalar paths
    #    disagree on the NaN they produce; the Swift tests only require a NaN).
    if torch is not None:
        bf16 = torch.from_numpy(rounding_inputs.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        f16_torch = torch.from_numpy(rounding_inputs.copy()).to(torch.float16).view(torch.int16).numpy().view(np.uint16)
        assert np.array_equal(f16_torch, rounding_inputs.astype(np.float16).view(np.uint16)), "numpy and torch fp16 differ"
        assert np.array_equal(bf16, bf16_round_numpy(rounding_inputs)), "torch bf16 differs from the RNE formula"
        source = "torch " + torch.__version__
    else:
        bf16 = bf16_round_numpy(rounding_inputs)
        source = "numpy round-to-nearest-even formula (torch unavailable)"
    expected["rounding"] = {
        "inputs": bits_of(rounding_inputs),
        "f16": rounding_inputs.astype(np.float16).view(np.uint16).tolist(),
        "bf16": bf16.tolist(),
        "f16_source": "numpy " + np.__version__ + " astype(float16)",
        "bf16_source": source,
    }

    (OUT / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    total_bytes = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({total_bytes} bytes)")


if __name__ == "__main__":
    main()
