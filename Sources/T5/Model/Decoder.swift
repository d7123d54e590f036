/// Per-request decoder state: the self-attention KV cache, the cross-attention keys and values (computed
/// once per input), and every scratch buffer a step needs. The cache grows by doubling as tokens are
/// generated, so memory follows the work done rather than `max_new_tokens`; a step that fits allocates
/// nothing, and a growth that would not fit in memory throws before allocating.
///
/// Rows are the sequences being decoded (N = inputs × beams); row r reads input `rowInput[r]` of the
/// encoder output. `forward` appends T tokens to every row: T = 1 while generating, T = the whole target
/// when scoring with teacher forcing.
final class DecoderState {
    let model: T5Model
    let rows: Int
    /// Decoder positions the cache holds before it next grows.
    private(set) var capacity: Int
    /// Decoder positions already in the cache.
    private(set) var length = 0
    /// The encoder input each row attends to.
    let rowInput: [Int]
    let sourceLengths: [Int]
    let sourceLength: Int

    private var selfKeys: [Tensor]    // per block (N, capacity, H·K)
    private var selfValues: [Tensor]
    private var spareKeys: [Tensor]   // the same, for reordering beams without allocating
    private var spareValues: [Tensor]
    private let crossKeys: [Tensor]   // per block (B, S, H·K)
    private let crossValues: [Tensor]

    // Scratch sized for `tokenCapacity` = N·T tokens per call; grown (rarely) by `reserve`.
    private var tokenCapacity = 0
    private var x = Tensor(zeros: [0]), h = Tensor(zeros: [0])
    private var q = Tensor(zeros: [0]), k = Tensor(zeros: [0]), v = Tensor(zeros: [0]), attn = Tensor(zeros: [0])
    private var ff = Tensor(zeros: [0]), ffLinear = Tensor(zeros: [0])
    private var scores = Tensor(zeros: [0])
    private var tokenIDs = [Int32]()
    /// (N·T, V) logits of the last `forward`.
    private(set) var logits = Tensor(zeros: [0])

    /// `capacity`: the positions to allocate at first (the cache grows past it when needed).
    init(model: T5Model, encoded: EncoderOutput, rowInput: [Int], capacity: Int) throws(T5Error) {
        try model.requireDecoder()
        self.model = model
        self.rows = rowInput.count
        self.capacity = max(1, capacity)
        self.rowInput = rowInput
        sourceLengths = encoded.lengths
        sourceLength = encoded.sourceLength
        let hk = model.innerDim, layers = model.weights.decoderBlocks.count
        try MemoryBudget.require(
            MemoryBudget.sum([
                MemoryBudget.floats(layers, 2, encoded.batch, encoded.sourceLength, hk),
                MemoryBudget.floats(layers, 2, rows, self.capacity, hk),
                Self.scratchBytes(model: model, rows: rows, tokensPerRow: 1, capacity: self.capacity, sourceLength: sourceLength),
            ]),
            for: "decoding \(rows) row\(rows == 1 ? "" : "s") over \(encoded.sourceLength) source tokens")
        let cacheShape = [rows, self.capacity, hk]
        selfKeys = model.weights.decoderBlocks.map { _ in Tensor(zeros: cacheShape) }
        selfValues = model.weights.decoderBlocks.map { _ in Tensor(zeros: cacheShape) }
        spareKeys = []
        spareValues = []

        // Cross-attention keys and values depend only on the encoder output: project them once per input.
        let sourceRows = encoded.batch * encoded.sourceLength
        var keys = [Tensor](), values = [Tensor]()
        for block in model.weights.decoderBlocks {
            guard let cross = block.crossAttention else { continue }
            let ck = Tensor(zeros: [encoded.batch, encoded.sourceLength, hk])
            let cv = Tensor(zeros: [encoded.batch, encoded.sourceLength, hk])
            GEMM.linear(encoded.hidden.pointer, rows: sourceRows, weight: cross.k, into: ck.pointer)
            GEMM.linear(encoded.hidden.pointer, rows: sourceRows, weight: cross.v, into: cv.pointer)
            keys.append(ck)
            values.append(cv)
        }
        crossKeys = keys
        crossValues = values
        try reserve(tokensPerRow: 1)
    }

    /// The bytes of the scratch buffers for `rows · tokensPerRow` tokens, nil on overflow.
    private static func scratchBytes(model: T5Model, rows: Int, tokensPerRow t: Int, capacity: Int, sourceLength: Int) -> Int? {
        let c = model.config, hk = model.innerDim
        guard let n = MemoryBudget.product([rows, t]) else { return nil }
        return MemoryBudget.sum([
            MemoryBudget.floats(n, c.dModel, 2), MemoryBudget.floats(n, hk, 4),
            MemoryBudget.floats(n, c.dFF, c.isGatedActivation ? 2 : 1), MemoryBudget.floats(n, c.vocabSize),
            MemoryBudget.floats(Parallel.threads, t, max(capacity, sourceLength)),
        ])
    }

    /// Makes the scratch buffers hold `rows · tokensPerRow` tokens (and attention scores over the current
    /// capacity).
    private func reserve(tokensPerRow t: Int) throws(T5Error) {
        guard let n = MemoryBudget.product([rows, t]) else {
            throw .tooLarge(what: "decoding \(rows) rows of \(t) tokens", bytes: nil, available: MemoryBudget.available())
        }
        // Attention scratch per worker: (T, L) floats for the most tokens per row any call has asked for.
        let perRow = max(t, tokenCapacity / rows)
        let bytes = Self.scratchBytes(model: model, rows: rows, tokensPerRow: perRow, capacity: capacity, sourceLength: sourceLength)
        guard let bytes, let scoreCount = MemoryBudget.product([Parallel.threads, perRow, max(capacity, sourceLength)]) else {
            throw .tooLarge(what: "decoding \(rows) rows of \(t) tokens", bytes: nil, available: MemoryBudget.available())
        }
        guard n > tokenCapacity || scoreCount > scores.count else { return }
        try MemoryBudget.require(bytes, for: "decoding \(rows) row\(rows == 1 ? "" : "s") of \(perRow) token\(perRow == 1 ? "" : "s")")
        let c = model.config, hk = model.innerDim
        tokenCapacity = max(n, tokenCapacity)
        let m = tokenCapacity
        x = Tensor(zeros: [m, c.dModel]); h = Tensor(zeros: [m, c.dModel])
        q = Tensor(zeros: [m, hk]); k = Tensor(zeros: [m, hk]); v = Tensor(zeros: [m, hk]); attn = Tensor(zeros: [m, hk])
        ff = Tensor(zeros: [m, c.dFF]); ffLinear = Tensor(zeros: c.isGatedActivation ? [m, c.dFF] : [0])
        scores = Tensor(zeros: [scoreCount])
        tokenIDs = [Int32](repeating: 0, count: m)
        logits = Tensor(zeros: [m, c.vocabSize])
    }

    /// Doubles the cache (at least to `positions`), copying each row's keys and values to the new stride.
    private func grow(to positions: Int) throws(T5Error) {
        if positions > model.decoderSupportedLength {
            throw .invalidOption(name: "GenerationOptions.maxNewTokens", reason: "\(positions) decoder positions exceed the \(model.decoderSupportedLength) this model's relative_attention_max_distance can be expanded to")
        }
        let newCapacity = max(positions, capacity <= Int.max / 2 ? 2 * capacity : Int.max)
        let hk = model.innerDim, layers = selfKeys.count
        try MemoryBudget.require(
            MemoryBudget.floats(layers, spareKeys.isEmpty ? 2 : 4, rows, newCapacity, hk),
            for: "a decoder cache of \(newCapacity) positions for \(rows) row\(rows == 1 ? "" : "s")")
        func regrown(_ old: Tensor) -> Tensor {
            let new = Tensor(zeros: [rows, newCapacity, hk])
            for r in 0..<rows {
                (new.pointer + r * newCapacity * hk).update(from: old.pointer + r * capacity * hk, count: length * hk)
            }
            return new
        }
        selfKeys = selfKeys.map(regrown)
        selfValues = selfValues.map(regrown)
        spareKeys = []
        spareValues = []
        capacity = newCapacity
    }

    /// Appends `tokens` (N, T) row-major to every row, at positions `length ..< length + T`, and computes
    /// the logits of each (N·T, V) into `logits`. Returns T.
    @discardableResult
    /// `blockInput(b, x)`, when given, receives the residual stream entering block b, (N·T, D), before it runs.
    func forward(tokens: [Int], blockInput: ((Int, UnsafePointer<Float>) -> Void)? = nil) throws(T5Error) -> Int {
        precondition(tokens.count % rows == 0, "tokens must be (rows, T)")
        let t = tokens.count / rows
        if length + t > capacity { try grow(to: length + t) }
        try reserve(tokensPerRow: t)
        let c = model.config, w = model.weights
        let d = c.dModel, hk = model.innerDim, dk = c.dKV, n = rows * t
        for i in 0..<n { tokenIDs[i] = Int32(tokens[i]) }
        tokenIDs.withUnsafeBufferPointer { ids in
            Embedding.forward(ids: ids.baseAddress.unsafelyUnwrapped, count: n, table: w.shared.pointer, dim: d, into: x.pointer)
        }
        for (layer, block) in w.decoderBlocks.enumerated() {
            blockInput?(layer, x.pointer)
            let bias = model.decoderBiases[layer]
            // Causal self-attention over the cache plus the new tokens (T5LayerSelfAttention).
            RMSNorm.forward(x.pointer, weight: block.selfAttention.norm.pointer, epsilon: c.layerNormEpsilon, rows: n, dim: d, into: h.pointer)
            GEMM.linear(h.pointer, rows: n, weight: block.selfAttention.q, into: q.pointer)
            GEMM.linear(h.pointer, rows: n, weight: block.selfAttention.k, into: k.pointer)
            GEMM.linear(h.pointer, rows: n, weight: block.selfAttention.v, into: v.pointer)
            let cacheK = selfKeys[layer].pointer, cacheV = selfValues[layer].pointer
            for r in 0..<rows {
                let dst = (r * capacity + length) * hk
                (cacheK + dst).update(from: k.pointer + r * t * hk, count: t * hk)
                (cacheV + dst).update(from: v.pointer + r * t * hk, count: t * hk)
            }
            let keyLength = length + t, firstPosition = length
            forEachRowAndHead(keyLength: keyLength) { r, head, scratch in
                Attention.forward(
                    q: q.pointer + r * t * hk + head * dk, ldq: hk,
                    keys: cacheK + r * capacity * hk + head * dk, ldk: hk,
                    values: cacheV + r * capacity * hk + head * dk, ldv: hk,
                    queries: t, keyLength: keyLength, headDim: dk,
                    firstPosition: firstPosition, causal: true,
                    bias: .relative(bias.center(head), maxDistance: bias.maxDistance),
                    scores: scratch, out: attn.pointer + r * t * hk + head * dk, ldo: hk)
            }
            GEMM.linear(attn.pointer, rows: n, weight: block.selfAttention.o, into: x.pointer, accumulate: true)

            // Cross-attention over the encoder output of the row's input (T5LayerCrossAttention, no bias).
            if let cross = block.crossAttention {
                RMSNorm.forward(x.pointer, weight: cross.norm.pointer, epsilon: c.layerNormEpsilon, rows: n, dim: d, into: h.pointer)
                GEMM.linear(h.pointer, rows: n, weight: cross.q, into: q.pointer)
                let ck = crossKeys[layer].pointer, cv = crossValues[layer].pointer
                forEachRowAndHead(keyLength: sourceLength) { r, head, scratch in
                    let input = rowInput[r]
                    let src = input * sourceLength * hk + head * dk
                    Attention.forward(
                        q: q.pointer + r * t * hk + head * dk, ldq: hk,
                        keys: ck + src, ldk: hk, values: cv + src, ldv: hk,
                        queries: t, keyLength: sourceLengths[input], headDim: dk,
                        firstPosition: 0, causal: false, bias: .none,
                        scores: scratch, out: attn.pointer + r * t * hk + head * dk, ldo: hk)
                }
                GEMM.linear(attn.pointer, rows: n, weight: cross.o, into: x.pointer, accumulate: true)
            }

            RMSNorm.forward(x.pointer, weight: block.feedForward.norm.pointer, epsilon: c.layerNormEpsilon, rows: n, dim: d, into: h.pointer)
            feedForward(block.feedForward.weights, normed: h.pointer, rows: n)
        }
        RMSNorm.forward(x.pointer, weight: w.decoderNorm.pointer, epsilon: c.layerNormEpsilon, rows: n, dim: d, into: h.pointer)
        model.head.unsafelyUnwrapped.forward(h.pointer, rows: n, into: logits.pointer)
        length += t
        return t
    }

    /// x += FeedForward(h) over `rows` rows of the step's buffers: `wo · act(wi · h)`, or
    /// `wo · (act(wi_0 · h) ⊙ (wi_1 · h))` when gated.
    private func feedForward(_ w: FeedForwardWeights, normed h: UnsafePointer<Float>, rows: Int) {
        let f = model.config.dFF, n = rows * f, activation = model.config.activation
        GEMM.linear(h, rows: rows, weight: w.gate, into: ff.pointer)
        if let wi1 = w.linear { GEMM.linear(h, rows: rows, weight: wi1, into: ffLinear.pointer) }
        let hidden = ff.pointer, linear = ffLinear.pointer, gated = w.linear != nil
        forEachSlice(n, cost: 4 * n) { s in
            if gated {
                Activations.gatedForward(activation, gate: hidden + s.lowerBound, linear: linear + s.lowerBound, s.count)
            } else {
                Activations.forward(activation, hidden + s.lowerBound, s.count)
            }
        }
        GEMM.linear(hidden, rows: rows, weight: w.wo, into: x.pointer, accumulate: true)
    }

    /// Runs `body(row, head, scores)` for every (row, head) pair, split across the worker threads; each
    /// worker gets its own `scores` scratch of (T, L) floats.
    private func forEachRowAndHead(keyLength: Int, _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        let heads = model.config.numHeads, pairs = rows * heads
        let t = tokenCapacity / rows
        let slice = t * max(capacity, sourceLength)
        // The scratch was sized for the thread count at `reserve`; never use more slices than it holds.
        let parts = min(Parallel.chunks(pairs, cost: pairs * t * keyLength * model.config.dKV * 2), scores.count / slice)
        let per = (pairs + parts - 1) / parts
        let scratch = scores.pointer
        Parallel.run(parts) { p in
            for pair in (p * per)..<min(pairs, (p + 1) * per) {
                body(pair / heads, pair % heads, scratch + p * slice)
            }
        }
    }

    /// Beam search bookkeeping: row r continues the sequence that was in row `sources[r]`, so its cache
    /// becomes a copy of that row's (beam_idx reordering of the cache in transformers).
    func reorder(_ sources: [Int]) throws(T5Error) {
        precondition(sources.count == rows)
        if sources.enumerated().allSatisfy({ $0.offset == $0.element }) { return }
        let hk = model.innerDim
        if spareKeys.isEmpty {
            try MemoryBudget.require(
                MemoryBudget.floats(selfKeys.count, 2, rows, capacity, hk),
                for: "reordering a decoder cache of \(capacity) positions for \(rows) rows")
            spareKeys = selfKeys.map { Tensor(zeros: $0.shape) }
            spareValues = selfValues.map { Tensor(zeros: $0.shape) }
        }
        for layer in selfKeys.indices {
            for (r, s) in sources.enumerated() {
                (spareKeys[layer].pointer + r * capacity * hk).update(from: selfKeys[layer].pointer + s * capacity * hk, count: length * hk)
                (spareValues[layer].pointer + r * capacity * hk).update(from: selfValues[layer].pointer + s * capacity * hk, count: length * hk)
            }
        }
        swap(&selfKeys, &spareKeys)
        swap(&selfValues, &spareValues)
    }
}
