#!/usr/bin/env python3
"""Peer benchmark: PyTorch, CTranslate2 (fp32, int8), ONNX Runtime and `t5 bench`, same protocol.

    python3 tools/bench/run.py --models small,flan-small --runs 5 --threads 2 \
        --t5 .build-bench/release/t5 --json /tmp/bench.json

Every peer runs in its own process (its peak RSS is that process's ru_maxrss, read with wait4), on the
same random inputs (numpy seed --seed): one 128-token input for the encoder row, one 32-token input
for the decode rows, sixteen 32-token inputs for the batch row; every decode produces exactly 64 new
tokens (eos suppressed until then). Each row runs once to warm up, then --runs times; medians are
reported, min-max in the spread table. The rows and their definitions are those of
Sources/t5/Bench.swift. See tools/bench/README.md.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
NEW_TOKENS = 64
EOS = 1
PAD = 0  # decoder start token of every T5 checkpoint

PEERS = ["pytorch", "ct2-fp32", "ct2-int8", "onnxruntime", "t5", "t5-int8"]
TITLES = {"pytorch": "PyTorch", "ct2-fp32": "CTranslate2 fp32", "ct2-int8": "CTranslate2 int8",
          "onnxruntime": "ONNX Runtime", "t5": "t5 (ours)", "t5-int8": "t5 int8 (ours)"}
OURS = ["t5", "t5-int8"]
FP32_PEERS = ["pytorch", "ct2-fp32", "onnxruntime"]

# (key, label, higher is better)
ROWS = [
    ("load_ms", "load, ms", False),
    ("encoder_b1_ms", "encoder 1 x 128 tokens, ms", False),
    ("ttft_ms", "time to first token (32-token input), ms", False),
    ("greedy_b1_ms_per_token", "steady greedy decode, batch 1, ms/token", False),
    ("greedy_b1_tokens_per_s", "greedy batch 1, new tokens/s (64 tokens)", True),
    ("beam4_b1_tokens_per_s", "beam 4, batch 1, new tokens/s", True),
    ("greedy_b16_tokens_per_s", "greedy batch 16, total new tokens/s", True),
    ("peak_rss_mb", "peak RSS, MB", False),
]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Timing protocol (the same as Bench.swift's measure: one warm-up, then `runs` timed calls)

# The machine may be shared. A run during which this process's threads sat runnable in the kernel's run
# queue (waiting for a core another process held) for more than GATE["max_wait"] of its wall time is
# "disturbed": it is repeated, within GATE["budget"] seconds per row, until `runs` undisturbed runs exist.
GATE = {"max_wait": 0.05, "budget": 180.0}


def sched_wait_ns(pid="self"):
    """Nanoseconds the threads of pid have spent waiting in a run queue (/proc/<pid>/task/*/schedstat)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total


def measure(body, runs):
    body()  # warm-up
    samples, t_start = [], time.time()
    while True:
        w0 = sched_wait_ns()
        t0 = time.perf_counter_ns()
        body()
        t1 = time.perf_counter_ns()
        w1 = sched_wait_ns()
        samples.append(((t1 - t0) / 1e6, (w1 - w0) / max(1, t1 - t0)))
        clean = [x for x in samples if x[1] <= GATE["max_wait"]]
        if len(clean) >= runs or (len(samples) >= runs and time.time() - t_start > GATE["budget"]):
            break
    kept = clean if len(clean) >= runs else sorted(samples, key=lambda x: x[1])[:runs]
    times = sorted(x[0] for x in kept)
    return {"median": times[len(times) // 2], "min": times[0], "max": times[-1], "all": times,
            "disturbed": len(samples) - len(clean), "clean": len(clean) >= runs,
            "max_wait_fraction_kept": max(x[1] for x in kept)}


def run_protocol(load, encode, generate, inputs, runs):
    """load() -> None; encode(ids128); generate(batch, n, beams) -> first sequence's new ids."""
    t0 = time.perf_counter_ns()
    load()
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    i32, i128, b16 = inputs["input32"], inputs["input128"], inputs["batch16"]
    out = {"load_ms": load_ms}
    out["encoder"] = measure(lambda: encode(i128), runs) if encode else None
    out["ttft"] = measure(lambda: generate([i32], 1, 1), runs)
    out["greedy64"] = measure(lambda: generate([i32], NEW_TOKENS, 1), runs)
    out["beam4"] = measure(lambda: generate([i32], NEW_TOKENS, 4), runs)
    out["greedy16"] = measure(lambda: generate(b16, NEW_TOKENS, 1), runs)
    out["greedy_ids"] = [int(x) for x in generate([i32], NEW_TOKENS, 1)]
    out["beam_ids"] = [int(x) for x in generate([i32], NEW_TOKENS, 4)]
    return out


# ------------------------------------------------------------------------------------------------
# Workers: each runs in a fresh process and imports only what its peer needs.

def worker_pytorch(model_dir, work, inputs, runs, threads):
    import torch
    import transformers
    from transformers import T5ForConditionalGeneration
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(threads)
    st = {}

    def load():
        st["m"] = T5ForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()

    def encode(ids):
        with torch.inference_mode():
            st["m"].get_encoder()(input_ids=torch.tensor([ids]))

    def generate(batch, n, beams):
        x = torch.tensor(batch)
        with torch.inference_mode():
            y = st["m"].generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=n,
                                 min_new_tokens=n, num_beams=beams, do_sample=False, num_return_sequences=1)
        return y[0, 1:].tolist()  # drop the decoder start token

    return run_protocol(load, encode, generate, inputs, runs)


def worker_ct2(model_dir, work, inputs, runs, threads, quant):
    import ctranslate2
    tdir, edir = work / f"ct2-{quant}", work / f"ct2-encoder-{quant}"
    vocab = json.loads((tdir / "shared_vocabulary.json").read_text())
    index = {}
    for i, tok in enumerate(vocab):
        index.setdefault(tok, i)
    st = {}

    def toks(ids):
        return [vocab[i] for i in ids]

    def load():
        st["t"] = ctranslate2.Translator(str(tdir), device="cpu", compute_type=quant, inter_threads=1,
                                         intra_threads=threads)

    def generate(batch, n, beams):
        r = st["t"].translate_batch([toks(s) for s in batch], beam_size=beams, max_decoding_length=n,
                                    min_decoding_length=n, num_hypotheses=1, max_batch_size=0,
                                    return_scores=False)
        return [index[t] for t in r[0].hypotheses[0]]

    out = run_protocol(load, None, generate, inputs, runs)
    # The translator API has no encoder-only call: the encoder row uses the same encoder converted as
    # an encoder-only CTranslate2 model, loaded after the other rows (so it adds to this peak RSS).
    enc = ctranslate2.Encoder(str(edir), device="cpu", compute_type=quant, inter_threads=1, intra_threads=threads)
    out["encoder"] = measure(lambda: enc.forward_batch([toks(inputs["input128"])]), runs)
    return out


def worker_onnxruntime(model_dir, work, inputs, runs, threads):
    import numpy as np
    import onnxruntime as ort
    odir = work / "onnx"
    meta = json.loads((odir / "meta.json").read_text())
    L, H, K = meta["num_decoder_layers"], meta["num_heads"], meta["d_kv"]
    st = {}

    def load():
        # One thread pool shared by the three sessions: with a pool per session, the encoder's and
        # cross_kv's idle workers keep spinning while the decoder runs and take the cores from it.
        from onnxruntime.capi import _pybind_state
        _pybind_state.set_global_thread_pool_sizes(threads, 1)
        so = ort.SessionOptions()
        so.use_per_session_threads = False
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        for name in ("encoder", "cross_kv", "decoder"):
            st[name] = ort.InferenceSession(str(odir / f"{name}.onnx"), so, providers=["CPUExecutionProvider"])

    def encode(ids):
        return st["encoder"].run(["hidden"], {"input_ids": np.asarray([ids], dtype=np.int64)})[0]

    self_names = [f"{kv}_{i}" for i in range(L) for kv in ("key", "value")]

    def decode(batch, n, beams):
        dec = st["decoder"]
        hidden = encode_batch(batch)
        cross = st["cross_kv"].run(None, {"hidden": hidden})            # 2L x (B, H, S, K)
        B = len(batch)
        if beams > 1:                                                   # encoder once, then expand
            cross = [np.repeat(c, beams, axis=0) for c in cross]
        rows = B * beams
        io = dec.io_binding()
        for i, c in enumerate(cross):
            io.bind_cpu_input(f"cross_{'key' if i % 2 == 0 else 'value'}_{i // 2}", c)
        past = [np.zeros((rows, H, 0, K), np.float32) for _ in self_names]
        past = [ort.OrtValue.ortvalue_from_numpy(p) for p in past]
        tok = np.full((rows, 1), PAD, np.int64)
        scores = np.zeros(rows, np.float32)
        if beams > 1:
            scores = np.tile(np.array([0] + [-1e9] * (beams - 1), np.float32), B)
        hist = np.zeros((rows, 0), np.int64)
        for step in range(n):
            io.bind_cpu_input("input_ids", tok)
            for name, p in zip(self_names, past):
                io.bind_ortvalue_input("past_" + name, p)
            io.bind_output("logits")
            for name in self_names:
                io.bind_output("present_" + name)
            dec.run_with_iobinding(io)
            outs = io.get_outputs()
            logits = outs[0].numpy()                                    # (rows, V)
            logits[:, EOS] = -np.inf                                    # min_new_tokens == max_new_tokens
            past = outs[1:]
            if beams == 1:
                nxt = logits.argmax(-1)
                hist = np.concatenate([hist, nxt[:, None]], 1)
                tok = nxt[:, None].astype(np.int64)
                continue
            m = logits.max(-1, keepdims=True)
            logp = logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))
            cand = (scores[:, None] + logp).reshape(B, beams * logp.shape[1])
            top = np.argpartition(-cand, beams, axis=1)[:, :beams]
            order = np.take_along_axis(cand, top, 1).argsort(1)[:, ::-1]
            top = np.take_along_axis(top, order, 1)
            src = (top // logp.shape[1] + np.arange(B)[:, None] * beams).reshape(-1)
            nxt = (top % logp.shape[1]).reshape(-1)
            scores = np.take_along_axis(cand, top, 1).reshape(-1)
            hist = np.concatenate([hist[src], nxt[:, None]], 1)
            tok = nxt[:, None].astype(np.int64)
            if step + 1 < n:
                past = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(p.numpy()[src])) for p in past]
        return hist[0].tolist()

    def encode_batch(batch):
        return st["encoder"].run(["hidden"], {"input_ids": np.asarray(batch, dtype=np.int64)})[0]

    return run_protocol(load, encode, decode, inputs, runs)


def worker_main(args):
    GATE["max_wait"], GATE["budget"] = args.max_wait, args.row_budget
    inputs = json.loads(Path(args.inputs).read_text())
    work = Path(args.work)
    if args.worker == "pytorch":
        out = worker_pytorch(args.model, work, inputs, args.runs, args.threads)
    elif args.worker in ("ct2-fp32", "ct2-int8"):
        out = worker_ct2(args.model, work, inputs, args.runs, args.threads, args.worker.split("-")[1].replace("fp", "float"))
    elif args.worker == "onnxruntime":
        out = worker_onnxruntime(args.model, work, inputs, args.runs, args.threads)
    else:
        sys.exit(f"unknown worker {args.worker}")
    Path(args.out).write_text(json.dumps(out))


# ------------------------------------------------------------------------------------------------
# Preparation: CTranslate2 conversion (with the scaling fix) and ONNX export. Runs in its own process.

def ct2_patch_t5_scaling():
    """CTranslate2 4.8's T5Loader scales the decoder output by d_model**-0.5 when
    config.tie_word_embeddings is true. transformers 5 forces tie_word_embeddings = True for every T5
    config and moves the real switch to config.scale_decoder_outputs (False for v1.1/Flan checkpoints,
    whose config.json says "tie_word_embeddings": false or "scale_decoder_outputs": false). Decide the
    scaling from scale_decoder_outputs, as transformers' T5ForConditionalGeneration.forward does."""
    from ctranslate2.converters import transformers as ct2t
    from ctranslate2.specs import model_spec
    if getattr(ct2t.T5Loader, "_t5bench_patched", False):
        return
    original = ct2t.T5Loader.get_model_spec

    def get_model_spec(self, model):
        spec = original(self, model)
        scale = getattr(model.config, "scale_decoder_outputs", None)
        if scale is not None:
            spec.decoder.scale_outputs = model.config.d_model ** -0.5 if scale else model_spec.OPTIONAL
        return spec

    ct2t.T5Loader.get_model_spec = get_model_spec
    ct2t.T5Loader._t5bench_patched = True


def prepare_ct2(model_dir, work):
    import torch
    from ctranslate2.converters import transformers as ct2t
    from ctranslate2.converters.converter import Converter
    from ctranslate2.specs import transformer_spec
    from transformers import T5ForConditionalGeneration
    ct2_patch_t5_scaling()
    for quant in ("float32", "int8"):
        out = work / f"ct2-{quant}"
        if not (out / "model.bin").exists():
            log(f"  converting to CTranslate2 {quant} -> {out}")
            ct2t.TransformersConverter(str(model_dir)).convert(str(out), quantization=quant, force=True)
    vocab = json.loads((work / "ct2-float32" / "shared_vocabulary.json").read_text())

    class T5EncoderConverter(Converter):
        """The encoder stack alone, set by CTranslate2's own T5Loader.set_stack."""
        def _load(self):
            with torch.no_grad():
                m = T5ForConditionalGeneration.from_pretrained(str(model_dir), dtype=torch.float32)
                c = m.config
                enc = transformer_spec.TransformerEncoderSpec(
                    c.num_layers, c.num_heads, pre_norm=True, activation=ct2t._SUPPORTED_ACTIVATIONS[c.dense_act_fn],
                    ffn_glu=c.is_gated_act, relative_attention_bias=True, rms_norm=True)
                ct2t.T5Loader().set_stack(enc, m.encoder)
                spec = transformer_spec.TransformerEncoderModelSpec(enc)
                spec.config.layer_norm_epsilon = c.layer_norm_epsilon
                spec.register_vocabulary(vocab)
                return spec

    for quant in ("float32", "int8"):
        out = work / f"ct2-encoder-{quant}"
        if not (out / "model.bin").exists():
            log(f"  converting the encoder to CTranslate2 {quant} -> {out}")
            T5EncoderConverter().convert(str(out), quantization=quant, force=True)


def prepare_onnx(model_dir, work):
    """Export encoder, cross-attention K/V and decoder-with-past graphs written over the HF modules."""
    import torch
    from torch import nn
    from transformers import T5ForConditionalGeneration
    from transformers.models.t5.modeling_t5 import T5Attention
    import warnings
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript exporter's notice
    out = work / "onnx"
    if (out / "meta.json").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    m = T5ForConditionalGeneration.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    c = m.config
    H, K, D = c.num_heads, c.d_kv, c.d_model
    eps = c.layer_norm_epsilon

    def rms(x, ln):
        return ln.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def heads(x):  # (B, L, H*K) -> (B, H, L, K)
        return x.view(x.shape[0], -1, H, K).transpose(1, 2)

    def merge(x):  # (B, H, L, K) -> (B, L, H*K)
        return x.transpose(1, 2).reshape(x.shape[0], -1, H * K)

    def ffn(x, layer):
        d, h = layer.DenseReluDense, rms(x, layer.layer_norm)
        h = d.act(d.wi_0(h)) * d.wi_1(h) if c.is_gated_act else d.act(d.wi(h))
        return x + d.wo(h)

    def attend(q, k, v, bias):  # T5: no 1/sqrt(d_kv)
        s = torch.matmul(q, k.transpose(-1, -2))
        if bias is not None:
            s = s + bias
        return torch.matmul(torch.softmax(s, -1), v)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.stack, self.shared = m.encoder, m.shared

        def forward(self, input_ids):  # (B, S) -> (B, S, D)
            x = self.shared(input_ids)
            S = input_ids.shape[1]
            pos = torch.arange(S)
            rel = pos[None, :] - pos[:, None]
            table = self.stack.block[0].layer[0].SelfAttention.relative_attention_bias
            b = T5Attention._relative_position_bucket(rel, bidirectional=True, num_buckets=c.relative_attention_num_buckets,
                                                      max_distance=c.relative_attention_max_distance)
            bias = table(b).permute(2, 0, 1)[None]  # (1, H, S, S)
            for blk in self.stack.block:
                a = blk.layer[0]
                h = rms(x, a.layer_norm)
                sa = a.SelfAttention
                x = x + sa.o(merge(attend(heads(sa.q(h)), heads(sa.k(h)), heads(sa.v(h)), bias)))
                x = ffn(x, blk.layer[1])
            return rms(x, self.stack.final_layer_norm)

    class CrossKV(nn.Module):
        def __init__(self):
            super().__init__()
            self.stack = m.decoder

        def forward(self, hidden):  # (B, S, D) -> 2L x (B, H, S, K)
            outs = []
            for blk in self.stack.block:
                ca = blk.layer[1].EncDecAttention
                outs += [heads(ca.k(hidden)), heads(ca.v(hidden))]
            return tuple(outs)

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.stack, self.shared, self.lm_head = m.decoder, m.shared, m.lm_head

        def forward(self, input_ids, *kv):  # (B, 1), 2L past (B,H,T,K), 2L cross (B,H,S,K)
            L = len(self.stack.block)
            past, cross = kv[:2 * L], kv[2 * L:]
            x = self.shared(input_ids)
            T = past[0].shape[2]
            rel = torch.arange(T + 1) - T                     # memory position - query position
            table = self.stack.block[0].layer[0].SelfAttention.relative_attention_bias
            b = T5Attention._relative_position_bucket(rel, bidirectional=False, num_buckets=c.relative_attention_num_buckets,
                                                      max_distance=c.relative_attention_max_distance)
            bias = table(b).transpose(0, 1)[None, :, None, :]  # (1, H, 1, T+1)
            presents = []
            for i, blk in enumerate(self.stack.block):
                a = blk.layer[0]
                h = rms(x, a.layer_norm)
                sa = a.SelfAttention
                k = torch.cat([past[2 * i], heads(sa.k(h))], 2)
                v = torch.cat([past[2 * i + 1], heads(sa.v(h))], 2)
                presents += [k, v]
                x = x + sa.o(merge(attend(heads(sa.q(h)), k, v, bias)))
                ca = blk.layer[1]
                h = rms(x, ca.layer_norm)
                x = x + ca.EncDecAttention.o(merge(attend(heads(ca.EncDecAttention.q(h)), cross[2 * i], cross[2 * i + 1], None)))
                x = ffn(x, blk.layer[2])
            x = rms(x, self.stack.final_layer_norm)
            if c.scale_decoder_outputs:
                x = x * (D ** -0.5)
            return (self.lm_head(x)[:, 0, :],) + tuple(presents)

    L = c.num_decoder_layers
    B, S, T = 2, 7, 3
    ids = torch.randint(3, 300, (B, S))
    kvn = [f"{kv}_{i}" for i in range(L) for kv in ("key", "value")]
    exp = dict(opset_version=17, dynamo=False, do_constant_folding=True)
    log(f"  exporting ONNX graphs -> {out}")
    with torch.no_grad():
        enc, ckv, dec = Encoder().eval(), CrossKV().eval(), Decoder().eval()
        torch.onnx.export(enc, (ids,), str(out / "encoder.onnx"), input_names=["input_ids"], output_names=["hidden"],
                          dynamic_axes={"input_ids": {0: "B", 1: "S"}, "hidden": {0: "B", 1: "S"}}, **exp)
        hid = enc(ids)
        cross = ckv(hid)
        torch.onnx.export(ckv, (hid,), str(out / "cross_kv.onnx"), input_names=["hidden"],
                          output_names=[f"cross_{n}" for n in kvn],
                          dynamic_axes={"hidden": {0: "B", 1: "S"}, **{f"cross_{n}": {0: "B", 2: "S"} for n in kvn}}, **exp)
        past = tuple(torch.randn(B, H, T, K) for _ in kvn)
        dyn = {"input_ids": {0: "B"}, "logits": {0: "B"}}
        dyn.update({f"past_{n}": {0: "B", 2: "T"} for n in kvn})
        dyn.update({f"cross_{n}": {0: "B", 2: "S"} for n in kvn})
        dyn.update({f"present_{n}": {0: "B", 2: "T1"} for n in kvn})
        torch.onnx.export(dec, (torch.zeros(B, 1, dtype=torch.long),) + past + tuple(cross), str(out / "decoder.onnx"),
                          input_names=["input_ids"] + [f"past_{n}" for n in kvn] + [f"cross_{n}" for n in kvn],
                          output_names=["logits"] + [f"present_{n}" for n in kvn], dynamic_axes=dyn, **exp)
    # Check the graphs against transformers' own forward (teacher-forced, 5 steps from an empty cache).
    import numpy as np
    import onnxruntime as ort
    sess = {n: ort.InferenceSession(str(out / f"{n}.onnx"), providers=["CPUExecutionProvider"])
            for n in ("encoder", "cross_kv", "decoder")}
    x = np.random.default_rng(0).integers(3, 300, (2, 11))
    dec_in = np.concatenate([np.zeros((2, 1), np.int64), np.random.default_rng(1).integers(3, 300, (2, 4))], 1)
    with torch.no_grad():
        ref = m(input_ids=torch.tensor(x), decoder_input_ids=torch.tensor(dec_in)).logits.numpy()
    h = sess["encoder"].run(None, {"input_ids": x})[0]
    cr = sess["cross_kv"].run(None, {"hidden": h})
    pst = [np.zeros((2, H, 0, K), np.float32) for _ in kvn]
    worst = 0.0
    for t in range(dec_in.shape[1]):
        feeds = {"input_ids": dec_in[:, t:t + 1]}
        feeds.update({f"past_{n}": p for n, p in zip(kvn, pst)})
        feeds.update({f"cross_{n}": q for n, q in zip(kvn, cr)})
        o = sess["decoder"].run(None, feeds)
        pst = o[1:]
        worst = max(worst, float(np.abs(o[0] - ref[:, t]).max() / (np.abs(ref[:, t]).max() + 1e-9)))
    log(f"  ONNX graphs vs transformers logits: max abs diff / max |logit| = {worst:.2e}")
    if worst > 1e-4:
        sys.exit(f"ONNX export does not match transformers (relative diff {worst:.2e})")
    (out / "meta.json").write_text(json.dumps({"num_decoder_layers": L, "num_heads": H, "d_kv": K,
                                               "check_rel_diff": worst}))


def check_ct2(model_dir, work):
    """Scores of one target under CTranslate2 fp32 vs transformers (shows the scaling fix works)."""
    import ctranslate2
    import numpy as np
    import torch
    from transformers import T5ForConditionalGeneration
    m = T5ForConditionalGeneration.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    vocab = json.loads((work / "ct2-float32" / "shared_vocabulary.json").read_text())
    rng = np.random.default_rng(7)
    src = [int(i) for i in rng.integers(3, 300, 31)] + [EOS]
    tgt = [int(i) for i in rng.integers(3, 300, 12)]
    with torch.no_grad():
        lg = m(input_ids=torch.tensor([src]), labels=torch.tensor([tgt])).logits[0]
        ref = torch.log_softmax(lg, -1)[torch.arange(len(tgt)), torch.tensor(tgt)].numpy()
    t = ctranslate2.Translator(str(work / "ct2-float32"), intra_threads=1)
    got = np.array(t.score_batch([[vocab[i] for i in src]], [[vocab[i] for i in tgt]])[0].log_probs[:len(tgt)])
    e = ctranslate2.Encoder(str(work / "ct2-encoder-float32"), intra_threads=1)
    with torch.no_grad():
        href = m.get_encoder()(input_ids=torch.tensor([src])).last_hidden_state[0].numpy()
    hid = np.array(e.forward_batch([[vocab[i] for i in src]]).last_hidden_state)[0]
    rel = float(np.abs(got - ref).max() / np.abs(ref).max())
    hrel = float(np.abs(hid - href).max() / np.abs(href).max())
    log(f"  CTranslate2 fp32 vs transformers: token log-prob rel diff {rel:.2e}; encoder output rel diff {hrel:.2e}")
    if rel > 1e-3 or hrel > 1e-3:
        sys.exit("CTranslate2 conversion does not match transformers")
    (work / "ct2-check.json").write_text(json.dumps({"logprob_rel_diff": rel, "encoder_rel_diff": hrel}))


def prepare_main(args):
    import torch
    torch.set_num_threads(args.threads)
    model, work = Path(args.model), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    peers = args.prepare.split(",")
    if "ct2" in peers:
        prepare_ct2(model, work)
        check_ct2(model, work)
    if "onnx" in peers:
        prepare_onnx(model, work)


# ------------------------------------------------------------------------------------------------
# Orchestration

def cpu_busy_seconds():
    """CPU seconds spent busy by the whole machine so far (/proc/stat, all cores)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(max_wait, threshold=0.15, quiet_seconds=3):
    """Wait (at most max_wait s) until other processes use < threshold cores for quiet_seconds in a row.
    The machine is shared: a compiler running next to a 2-thread benchmark on 2 cores distorts it badly
    (spinning thread pools wait a whole scheduler slice at each barrier). Returns the seconds waited."""
    t0, quiet = time.time(), 0
    while time.time() - t0 < max_wait:
        b0, w0 = cpu_busy_seconds(), time.time()
        time.sleep(1)
        load = (cpu_busy_seconds() - b0) / (time.time() - w0)
        quiet = quiet + 1 if load < threshold else 0
        if quiet >= quiet_seconds:
            break
    return time.time() - t0


def run_child(cmd, env=None):
    """Run cmd; return (exit status, stdout, stderr, peak RSS in MB from wait4's ru_maxrss, other
    processes' average CPU use during the run in cores, the fraction of the wall time the child's threads
    spent waiting in a run queue (summed over threads, polled from /proc every 0.1 s))."""
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        b0, w0 = cpu_busy_seconds(), time.time()
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env)
        waits = {}
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid != 0:
                break
            try:
                for t in os.listdir(f"/proc/{p.pid}/task"):
                    try:
                        with open(f"/proc/{p.pid}/task/{t}/schedstat") as f:
                            waits[t] = int(f.read().split()[1])
                    except (OSError, IndexError, ValueError):
                        pass
            except OSError:
                pass
            time.sleep(0.1)
        wall, busy = time.time() - w0, cpu_busy_seconds() - b0
        p.returncode = os.waitstatus_to_exitcode(status)
        foreign = max(0.0, (busy - ru.ru_utime - ru.ru_stime) / wall) if wall > 0 else 0.0
        fo.seek(0)
        fe.seek(0)
        return (p.returncode, fo.read().decode(), fe.read().decode(), ru.ru_maxrss * 1024 / 1e6, foreign,
                sum(waits.values()) / 1e9 / wall if wall > 0 else 0.0)


def run_measured(label, make_cmd, env, args, retry=True):
    """run_child after waiting for a quiet machine. With retry, rerun (up to --retries) while the child's
    threads waited in a run queue for more than --max-wait of the run's wall time, keeping the least
    disturbed attempt (used for t5 bench, which cannot reject single disturbed runs itself). make_cmd(attempt)
    returns (argv, path of the JSON the child writes or None); returns run_child's tuple plus that file's text."""
    best = None
    for attempt in range(args.retries + 1 if retry else 1):
        waited = wait_until_idle(args.idle_wait) if args.idle_wait > 0 else 0
        if waited > 5:
            log(f"  waited {waited:.0f}s for a quiet machine")
        cmd, out = make_cmd(attempt)
        got = run_child(cmd, env)
        text = Path(out).read_text() if out and Path(out).exists() else None
        got = got + (text,)
        log(f"  {label}: other processes used {got[4]:.2f} cores on average; its threads waited for a core "
            f"{100 * got[5]:.1f}% of the wall time")
        if best is None or (got[0] == 0 and (best[0] != 0 or got[5] < best[5])):
            best = got
        if got[0] != 0 or got[5] <= args.max_wait:
            break
        if retry and attempt < args.retries:
            log(f"  disturbed (> {100 * args.max_wait:.0f}%): running {label} again")
    return best


def thread_env(threads):
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


def derive(raw):
    """The Bench.swift rows from the raw timings of one Python peer (times in ms)."""
    r = {"load_ms": raw["load_ms"]}
    enc, ttft, g64, b4, g16 = raw["encoder"], raw["ttft"], raw["greedy64"], raw["beam4"], raw["greedy16"]
    spread = {}
    r["encoder_b1_ms"] = enc["median"]
    spread["encoder_b1_ms"] = (enc["min"], enc["max"])
    r["ttft_ms"] = ttft["median"]
    spread["ttft_ms"] = (ttft["min"], ttft["max"])
    r["greedy_b1_ms_per_token"] = (g64["median"] - ttft["median"]) / (NEW_TOKENS - 1)
    r["greedy_b1_tokens_per_s"] = NEW_TOKENS / g64["median"] * 1000
    spread["greedy_b1_tokens_per_s"] = (NEW_TOKENS / g64["max"] * 1000, NEW_TOKENS / g64["min"] * 1000)
    r["beam4_b1_tokens_per_s"] = NEW_TOKENS / b4["median"] * 1000
    spread["beam4_b1_tokens_per_s"] = (NEW_TOKENS / b4["max"] * 1000, NEW_TOKENS / b4["min"] * 1000)
    r["greedy_b16_tokens_per_s"] = 16 * NEW_TOKENS / g16["median"] * 1000
    spread["greedy_b16_tokens_per_s"] = (16 * NEW_TOKENS / g16["max"] * 1000, 16 * NEW_TOKENS / g16["min"] * 1000)
    return r, spread


def make_inputs(model_dir, seed):
    import numpy as np
    import sentencepiece as spm
    n = spm.SentencePieceProcessor(model_file=str(model_dir / "spiece.model")).get_piece_size()
    rng = np.random.default_rng(seed)

    def one(length):  # as Bench.swift: ordinary pieces 3..<n, then eos
        return [int(i) for i in rng.integers(3, n, length - 1)] + [EOS]

    return {"input32": one(32), "input128": one(128), "batch16": [one(32) for _ in range(16)], "sp_size": n}


def bench_model(name, args, peers):
    model_dir = Path(args.model_dir) / name
    work = Path(args.work) / name
    work.mkdir(parents=True, exist_ok=True)
    if not (model_dir / "config.json").exists():
        log(f"{model_dir} missing: running make_models.py")
        subprocess.run([sys.executable, str(HERE / "make_models.py"), args.model_dir, "--models", name], check=True)
    prep = [p for p, need in (("ct2", any(p.startswith("ct2") for p in peers)), ("onnx", "onnxruntime" in peers)) if need]
    notes = {}
    if prep:
        log(f"[{name}] preparing {', '.join(prep)}")
        rc, so, se, _, _, _ = run_child([sys.executable, __file__, "--prepare", ",".join(prep), "--model", str(model_dir),
                                   "--work", str(work), "--threads", str(args.threads)], env=thread_env(args.threads))
        for line in se.splitlines():
            if line.startswith("  "):
                log(line)
        if rc != 0:
            log(se[-3000:])
            notes["prepare"] = f"preparation failed (exit {rc}): {se.strip().splitlines()[-1] if se.strip() else ''}"
            log(notes["prepare"])
    inputs = make_inputs(model_dir, args.seed)
    inputs_path = work / "inputs.json"
    inputs_path.write_text(json.dumps(inputs))
    results, spreads, raws = {}, {}, {}

    def python_peer(peer, threads):
        log(f"[{name}] {peer} (threads {threads}, runs {args.runs}) ...")
        t0 = time.time()

        def make_cmd(attempt):
            outp = work / f"result-{peer}-t{threads}-{attempt}.json"
            if outp.exists():
                outp.unlink()
            return [sys.executable, __file__, "--worker", peer, "--model", str(model_dir), "--work", str(work),
                    "--inputs", str(inputs_path), "--runs", str(args.runs), "--threads", str(threads),
                    "--max-wait", str(args.max_wait), "--row-budget", str(args.row_budget), "--out", str(outp)], outp

        rc, so, se, rss, foreign, waitf, text = run_measured(f"{peer} t{threads}", make_cmd, thread_env(threads), args,
                                                             retry=False)
        if rc != 0 or text is None:
            msg = se.strip().splitlines()[-1] if se.strip() else f"exit {rc}"
            log(se[-3000:])
            notes[peer] = f"failed: {msg}"
            return None
        raw = json.loads(text)
        r, s = derive(raw)
        r["peak_rss_mb"] = rss
        r["foreign_cores"] = foreign
        r["run_queue_wait"] = waitf
        r["disturbed_runs"] = sum(raw[k]["disturbed"] for k in ("encoder", "ttft", "greedy64", "beam4", "greedy16"))
        r["unclean_rows"] = [k for k in ("encoder", "ttft", "greedy64", "beam4", "greedy16") if not raw[k]["clean"]]
        log(f"[{name}] {peer} done in {time.time() - t0:.0f}s")
        return r, s, raw

    for peer in peers:
        if peer in OURS:
            ours_dir, weights = model_dir, []
            if peer == "t5-int8":
                # `t5 convert --weights int8` once per model (weight-only int8, per-output-channel scales).
                ours_dir = Path(args.work) / name / "t5-int8"
                if not (ours_dir / "model.safetensors").exists():
                    done = subprocess.run([args.t5, "convert", "--model", str(model_dir), "--weights", "int8",
                                           "--out", str(ours_dir)], capture_output=True, text=True)
                    if done.returncode != 0:
                        notes[peer] = f"t5 convert failed (exit {done.returncode}): {done.stderr.strip()[-500:]}"
                        log(notes[peer])
                        continue
                weights = ["--weights", "int8"]
            log(f"[{name}] {peer} bench (threads {args.threads}, runs {args.runs}) ...")
            t0 = time.time()
            rc, so, se, rss, foreign, waitf, _ = run_measured(
                peer, lambda attempt: ([args.t5, "bench", "--model", str(ours_dir), *weights, "--runs", str(args.runs),
                                        "--threads", str(args.threads), "--json"], None), thread_env(args.threads), args)
            if rc != 0:
                notes[peer] = f"failed (exit {rc}): {se.strip()[-500:]}"
                log(notes[peer])
                continue
            r = json.loads(so)
            raws[peer] = {"t5_bench_json": r}
            results[peer] = {k: r.get(k) for k, _, _ in ROWS}
            results[peer]["foreign_cores"] = foreign
            results[peer]["run_queue_wait"] = waitf
            raws[peer]["peak_rss_mb_wait4"] = rss
            spreads[peer] = t5_spread(r)
            log(f"[{name}] {peer} done in {time.time() - t0:.0f}s")
        elif peer == "ct2-int8":
            # its best thread count of 1 or --threads, chosen per row
            best, bs, used = None, None, {}
            for t in sorted({1, args.threads}):
                got = python_peer(peer, t)
                if got is None:
                    continue
                r, s, raw = got
                raws[f"{peer}-t{t}"] = raw
                results[f"{peer}-t{t}"] = r
                if best is None:
                    best, bs, used = dict(r), dict(s), {k: t for k in r}
                    continue
                for key, _, higher in ROWS:
                    if r.get(key) is not None and (higher and r[key] > best[key] or not higher and r[key] < best[key]):
                        best[key], used[key] = r[key], t
                        if key in s:
                            bs[key] = s[key]
            if best is not None:
                results[peer], spreads[peer] = best, bs
                spreads[peer]["_threads"] = used
        else:
            got = python_peer(peer, args.threads)
            if got is not None:
                results[peer], spreads[peer], raws[peer] = got
    # Same inputs, same greedy path? (fp32 peers should agree with PyTorch token for token.)
    agree = {}
    if "pytorch" in raws:
        ref = raws["pytorch"]["greedy_ids"]
        for key, raw in raws.items():
            if key != "pytorch" and isinstance(raw, dict) and "greedy_ids" in raw:
                ids = raw["greedy_ids"]
                k = next((i for i, (a, b) in enumerate(zip(ref, ids)) if a != b), min(len(ref), len(ids)))
                agree[key] = f"{k}/{len(ref)}"
    checks = {}
    for f in ("ct2-check.json",):
        if (work / f).exists():
            checks["ct2"] = json.loads((work / f).read_text())
    if (work / "onnx" / "meta.json").exists():
        checks["onnx"] = json.loads((work / "onnx" / "meta.json").read_text())
    return {"model": name, "model_dir": str(model_dir), "results": results, "spread": spreads, "raw": raws,
            "notes": notes, "greedy_prefix_agreement_with_pytorch": agree, "checks": checks,
            "inputs_seed": args.seed, "sp_size": inputs["sp_size"]}


def fmt(v, key):
    if v is None:
        return "—"
    if key == "peak_rss_mb" or key == "load_ms" and v >= 100 or v >= 1000:
        return f"{v:.0f}"
    if v >= 100:
        return f"{v:.1f}"
    return f"{v:.2f}"


def t5_spread(r):
    """(min, max) per row in the row's unit, from `t5 bench --json`'s <row>_run_min_ms / <row>_run_max_ms (the
    fastest and slowest timed run; <row> is the key without its unit); rows that are not a single timed call
    have none."""
    per_run = {"encoder_b1_ms": None, "ttft_ms": None, "greedy_b1_tokens_per_s": 64 * 1000.0,
               "beam4_b1_tokens_per_s": 64 * 1000.0, "greedy_b16_tokens_per_s": 16 * 64 * 1000.0}
    out = {}
    for key, tokens in per_run.items():
        base = next((key[: -len(u)] for u in ("_tokens_per_s", "_ms_per_token", "_ms") if key.endswith(u)), key)
        lo, hi = r.get(base + "_run_min_ms"), r.get(base + "_run_max_ms")
        if lo is None or hi is None:
            continue
        out[key] = (lo, hi) if tokens is None else (tokens / hi, tokens / lo)
    return out


def table(res, peers):
    cols = [p for p in peers if p not in OURS]
    ours_cols = [p for p in OURS if p in peers]
    out = []
    head = (["metric"] + [TITLES[p] for p in cols] + [TITLES[p] for p in ours_cols] +
            ["ours vs best peer", "ours vs best fp32 peer"] + (["ours int8 vs CTranslate2 int8"] if "t5-int8" in peers else []))
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    R, S = res["results"], res["spread"]
    for key, label, higher in ROWS:
        cells = [label]
        for p in cols:
            v = R.get(p, {}).get(key)
            c = fmt(v, key)
            th = S.get(p, {}).get("_threads", {}).get(key) if p == "ct2-int8" else None
            if th is not None and v is not None:
                c += f" ({th}t)"
            cells.append(c)
        for p in ours_cols:
            cells.append(fmt(R.get(p, {}).get(key), key))
        ours = R.get("t5", {}).get(key)
        groups = [(ours, cols), (ours, [p for p in cols if p in FP32_PEERS])]
        if "t5-int8" in peers:
            groups.append((R.get("t5-int8", {}).get(key), ["ct2-int8"]))
        for mine, group in groups:
            vals = [R[p][key] for p in group if R.get(p, {}).get(key) is not None]
            if mine is None or not vals or mine == 0:
                cells.append("—")
                continue
            best = max(vals) if higher else min(vals)
            ratio = mine / best if higher else best / mine
            cells.append(f"{ratio:.2f}")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def spread_table(res, peers):
    out = ["| row (min–max over runs) | " + " | ".join(TITLES[p] for p in peers) + " |", "|" + "---|" * (len(peers) + 1)]
    for key, label, _ in ROWS:
        if key in ("load_ms", "peak_rss_mb", "greedy_b1_ms_per_token"):
            continue
        cells = [label]
        for p in peers:
            s = res["spread"].get(p, {}).get(key)
            cells.append(f"{fmt(s[0], key)}–{fmt(s[1], key)}" if s else "—")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def versions():
    v = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    for mod in ("torch", "transformers", "ctranslate2", "onnxruntime", "onnx", "numpy"):
        try:
            r = subprocess.run([sys.executable, "-c", f"import {mod}; print({mod}.__version__)"], capture_output=True,
                               text=True, cwd="/")
            v[mod] = r.stdout.strip() or "not installed"
        except Exception as e:  # noqa: BLE001
            v[mod] = f"error {e}"
    try:
        v["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except Exception:  # noqa: BLE001
        pass
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="small,flan-small", help="comma-separated: small, flan-small, base")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per row after one warm-up")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--t5", default=str(REPO / ".build-bench/release/t5"), help="the t5 binary")
    ap.add_argument("--json", help="write all results (with raw timings) here")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of " + ",".join(PEERS))
    ap.add_argument("--model-dir", default="/tmp/t5-bench-models", help="where make_models.py wrote the models")
    ap.add_argument("--work", default="/tmp/t5-bench-work", help="converted/exported peer models go here")
    ap.add_argument("--seed", type=int, default=1234, help="numpy seed of the random input ids")
    ap.add_argument("--idle-wait", type=float, default=300,
                    help="before each peer, wait up to this many seconds for other processes to go quiet (0: don't)")
    ap.add_argument("--max-wait", type=float, default=0.05,
                    help="a timed run is disturbed when the peer's threads waited for a core longer than this "
                         "fraction of its time; Python peers repeat such runs, t5 bench is rerun whole")
    ap.add_argument("--row-budget", type=float, default=180,
                    help="seconds per row a Python peer may spend repeating disturbed runs")
    ap.add_argument("--retries", type=int, default=3, help="reruns of a disturbed t5 bench")
    # internal
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--prepare", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--inputs", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker_main(args)
    if args.prepare:
        return prepare_main(args)
    peers = [p for p in args.peers.split(",") if p]
    for p in peers:
        if p not in PEERS:
            sys.exit(f"unknown peer {p!r}")
    if any(p in OURS for p in peers) and not os.access(args.t5, os.X_OK):
        sys.exit(f"no t5 binary at {args.t5}: build with `swift build -c release --scratch-path .build-bench` or pass --t5")
    started = datetime.datetime.now(datetime.timezone.utc)
    cmd = "python3 tools/bench/run.py " + " ".join(sys.argv[1:])
    all_res = []
    for name in [m for m in args.models.split(",") if m]:
        res = bench_model(name, args, peers)
        all_res.append(res)
        print(f"\n### {name}\n")
        print(table(res, peers))
        print()
        print(spread_table(res, peers))
        print("\nper peer process: other processes' average CPU use (cores) / share of wall time its threads "
              "waited for a core / timed runs discarded as disturbed: " +
              "; ".join(f"{k} {v['foreign_cores']:.2f} / {100 * v['run_queue_wait']:.1f}% / {v.get('disturbed_runs', '—')}"
                        for k, v in res["results"].items() if "foreign_cores" in v and k != "ct2-int8"))
        unclean = {k: v["unclean_rows"] for k, v in res["results"].items() if v.get("unclean_rows")}
        if unclean:
            print(f"\nWARNING: rows without {args.runs} undisturbed runs within --row-budget (least disturbed "
                  f"runs used): {unclean}")
        if res["greedy_prefix_agreement_with_pytorch"]:
            print("\ngreedy 64-token path, leading tokens equal to PyTorch's: " +
                  ", ".join(f"{k} {v}" for k, v in res["greedy_prefix_agreement_with_pytorch"].items()))
        for k, v in res["notes"].items():
            print(f"\nnote ({k}): {v}")
        sys.stdout.flush()
    finished = datetime.datetime.now(datetime.timezone.utc)
    meta = {"command": cmd, "started": started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds"), "runs": args.runs, "threads": args.threads,
            "versions": versions(), "t5": args.t5}
    print(f"\n{cmd}\nstarted {meta['started']}, finished {meta['finished']}; versions: " +
          ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "models": all_res}, indent=1))


if __name__ == "__main__":
    main()
