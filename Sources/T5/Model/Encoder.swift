/// The encoder's output for a padded batch: final hidden states and each input's true length.
public struct EncoderOutput: Sendable {
    /// (B, S, D), rows past an input's length are padding.
    public let hidden: Tensor
    public let lengths: [Int]
    public var batch: Int { lengths.count }
    public var sourceLength: Int { hidden.shape[1] }
}

extension T5Model {
    /// Runs the encoder over a batch of token-id sequences of any lengths (T5Stack with is_decoder = False).
    ///
    /// Each block: x += SelfAttention(RMSNorm(x)); x += FeedForward(RMSNorm(x)); then a final RMSNorm.
    /// The relative position bias is block 0's in every block (T5), or each block's own (UMT5). Padding never reaches a real
    /// position: each input attends only to its own length, which is transformers' attention mask.
    ///
    /// Throws `.invalidOption` for an id outside the vocabulary or an input longer than the relative position
    /// bias covers, and `.tooLarge` when the activations would not fit in memory.
    public func encode(_ inputs: [[Int]]) throws(T5Error) -> EncoderOutput {
        try encode(inputs, blockInput: nil)
    }

    /// `encode`, handing `blockInput(b, x)` the residual stream entering block b, (N, D) with every input's
    /// tokens back to back (no padding), before the block runs: a distillation teacher's hidden states.
    func encode(_ inputs: [[Int]], blockInput: ((Int, UnsafePointer<Float>) -> Void)?) throws(T5Error) -> EncoderOutput {
        let c = config
        let b = inputs.count, s = max(1, inputs.map(\.count).max() ?? 1)
        let d = c.dModel, hk = innerDim, f = c.dFF
        try checkIDs(inputs)
        if s > encoderSupportedLength {
            throw .invalidOption(name: "input", reason: "\(s) tokens exceed the \(encoderSupportedLength) positions this model's relative_attention_max_distance can be expanded to")
        }
        let workers = Parallel.threads
        // Packed rows: every input's tokens back to back, so no product runs over padding (a batch of mixed
        // lengths costs its tokens, not batch x longest). Attention reads each input's own rows.
        let lengths = inputs.map(\.count)
        var offsets = [Int](), total = 0
        for length in lengths {
            offsets.append(total)
            total += length
        }
        let rows = max(total, 1)
        try MemoryBudget.require(
            MemoryBudget.sum([
                MemoryBudget.floats(b, s, d), MemoryBudget.floats(rows, d, 2), MemoryBudget.floats(rows, hk, 4),
                MemoryBudget.floats(rows, f, c.isGatedActivation ? 2 : 1), MemoryBudget.floats(workers, s, s),
            ]),
            for: "encoding \(b) input\(b == 1 ? "" : "s") of up to \(s) tokens")

        let x = Tensor(zeros: [rows, d])       // (N, D) residual stream, N = total tokens
        let h = Tensor(zeros: [rows, d])       // (N, D) normed
        let q = Tensor(zeros: [rows, hk])      // (N, H·K)
        let k = Tensor(zeros: [rows, hk])
        let v = Tensor(zeros: [rows, hk])
        let attn = Tensor(zeros: [rows, hk])
        let ff = Tensor(zeros: [rows, f])      // (N, F)
        let ffLinear = Tensor(zeros: c.isGatedActivation ? [rows, f] : [0])
        let scores = Tensor(zeros: [workers * s * s])

        Embedding.forward(ids: [inputs.flatMap { $0 }], table: weights.shared.pointer, dim: d, length: rows, into: x.pointer)

        for (layer, block) in weights.encoderBlocks.enumerated() {
            blockInput?(layer, x.pointer)
            RMSNorm.forward(x.pointer, weight: block.selfAttentionNorm.pointer, epsilon: c.layerNormEpsilon, rows: rows, dim: d, into: h.pointer)
            selfAttention(
                block.selfAttention, normed: h.pointer, rows: rows, q: q.pointer, k: k.pointer, v: v.pointer,
                perSequence: { i in (offsets[i], lengths[i]) }, sequences: b, bias: encoderBiases[layer],
                scores: scores.pointer, scoreSlices: workers, out: attn.pointer)
            GEMM.linear(attn.pointer, rows: rows, weight: block.selfAttention.o, into: x.pointer, accumulate: true)
            RMSNorm.forward(x.pointer, weight: block.feedForwardNorm.pointer, epsilon: c.layerNormEpsilon, rows: rows, dim: d, into: h.pointer)
            feedForward(block.feedForward, normed: h.pointer, rows: rows, hidden: ff.pointer, linear: ffLinear.pointer, residual: x.pointer)
        }
        RMSNorm.forward(x.pointer, weight: weights.encoderFinalNorm.pointer, epsilon: c.layerNormEpsilon, rows: rows, dim: d, into: x.pointer)
        // Unpacked into (B, S, D) for the decoder's cross-attention; padding rows are zero.
        let hidden = Tensor(zeros: [b, s, d])
        for i in 0..<b where lengths[i] > 0 {
            (hidden.pointer + i * s * d).update(from: x.pointer + offsets[i] * d, count: lengths[i] * d)
        }
        return EncoderOutput(hidden: hidden, lengths: lengths)
    }

    /// Bidirectional self-attention of the encoder: q, k, v projections over all rows in three GEMMs, then
    /// attention per sequence and head. `perSequence(i)` gives sequence i's first row and true length.
    func selfAttention(
        _ w: AttentionWeights, normed h: UnsafePointer<Float>, rows: Int,
        q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
        perSequence: (Int) -> (first: Int, length: Int), sequences: Int, bias: RelativePositionBias,
        scores: UnsafeMutablePointer<Float>, scoreSlices: Int, out: UnsafeMutablePointer<Float>
    ) {
        let hk = innerDim, dk = config.dKV
        GEMM.linear(h, rows: rows, weight: w.q, into: q)
        GEMM.linear(h, rows: rows, weight: w.k, into: k)
        GEMM.linear(h, rows: rows, weight: w.v, into: v)
        let heads = config.numHeads, pairs = sequences * heads
        let longest = (0..<sequences).map { perSequence($0).length }.max() ?? 0
        let parts = min(scoreSlices, Parallel.chunks(pairs, cost: pairs * longest * longest * dk * 2))
        let per = (pairs + parts - 1) / parts
        Parallel.run(parts) { p in
            let scratch = scores + p * longest * longest
            for pair in (p * per)..<min(pairs, (p + 1) * per) {
                let (first, length) = perSequence(pair / heads)
                guard length > 0 else { continue }
                let head = pair % heads
                let offset = first * hk + head * dk
                Attention.forward(
                    q: q + offset, ldq: hk, keys: k + offset, ldk: hk, values: v + offset, ldv: hk,
                    queries: length, keyLength: length, headDim: dk,
                    firstPosition: 0, causal: false,
                    bias: .relative(bias.center(head), maxDistance: bias.maxDistance),
                    scores: scratch, out: out + offset, ldo: hk)
            }
        }
    }

    /// x += FeedForward(h): `wo · act(wi · h)`, or `wo · (act(wi_0 · h) ⊙ (wi_1 · h))` when gated.
    func feedForward(
        _ w: FeedForwardWeights, normed h: UnsafePointer<Float>, rows: Int,
        hidden: UnsafeMutablePointer<Float>, linear: UnsafeMutablePointer<Float>,
        residual x: UnsafeMutablePointer<Float>
    ) {
        let f = config.dFF, n = rows * f, activation = config.activation
        GEMM.linear(h, rows: rows, weight: w.wi, into: hidden)
        if let wi1 = w.wiLinear { GEMM.linear(h, rows: rows, weight: wi1, into: linear) }
        // The activation over (rows, F) values, in slices across the threads when there are many rows.
        let parts = Parallel.chunks(n, granule: 1024, cost: 4 * n)
        let per = ((n + parts - 1) / parts + 1023) / 1024 * 1024
        let gated = w.wiLinear != nil
        Parallel.run(parts) { p in
            let lo = min(n, p * per), count = min(n, lo + per) - lo
            guard count > 0 else { return }
            if gated {
                Activations.gatedForward(activation, gate: hidden + lo, linear: linear + lo, count)
            } else {
                Activations.forward(activation, hidden + lo, count)
            }
        }
        GEMM.linear(hidden, rows: rows, weight: w.wo, into: x, accumulate: true)
    }
}
