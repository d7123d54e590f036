/// The decoder's forward over a changing set of sequences: each live slot of a `KVCache` appends its own
/// number of tokens at its own position (the slot's length), and the logits of every appended token come
/// out in `logits`. One token per live slot while generating; a whole target per slot (rows may differ in
/// length) when scoring with teacher forcing. The scratch buffers grow (rarely) with the tokens of a call,
/// so a step that fits allocates nothing, and a growth that would not fit in memory throws before
/// allocating.
final class DecoderState {
    let model: T5Model
    let cache: KVCache
    /// The slots admitted by `init(model:encoded:rowInput:capacity:)`, one per row, for callers that decode
    /// a fixed set of rows (`forward(tokens:)`, `reorder(_:)`).
    let rowSlots: [KVCache.Slot]
    var rows: Int { rowSlots.count }
    /// Decoder positions the largest slot holds before it next grows.
    var capacity: Int { cache.capacity }

    // Scratch sized for `tokenCapacity` tokens per call; grown (rarely) by `reserve`.
    private var tokenCapacity = 0
    private var x = Tensor(zeros: [0]), h = Tensor(zeros: [0])
    private var q = Tensor(zeros: [0]), k = Tensor(zeros: [0]), v = Tensor(zeros: [0]), attn = Tensor(zeros: [0])
    private var ff = Tensor(zeros: [0]), ffLinear = Tensor(zeros: [0])
    private var scores = Tensor(zeros: [0])
    private var tokenIDs = [Int32]()
    /// Per row of the current call: its first token in the packed scratch, its position, its token count.
    private var rowFirst = [Int](), rowPosition = [Int](), rowCount = [Int]()
    /// (tokens, V) logits of the last `forward`, the rows' tokens back to back in the order they were given.
    private(set) var logits = Tensor(zeros: [0])

    /// A decoder with an empty cache over `encoded`; slots are admitted through `cache`.
    /// `initialPositions`: the positions each slot allocates at first (it grows past them when needed).
    init(model: T5Model, encoded: EncoderOutput, initialPositions: Int) throws(T5Error) {
        try model.requireDecoder()
        self.model = model
        cache = try KVCache(model: model, encoded: encoded, initialPositions: initialPositions)
        rowSlots = []
    }

    /// A decoder with one slot per row: row r reads input `rowInput[r]` of the encoder output.
    /// `capacity`: the positions to allocate at first (the cache grows past it when needed).
    init(model: T5Model, encoded: EncoderOutput, rowInput: [Int], capacity: Int) throws(T5Error) {
        try model.requireDecoder()
        self.model = model
        cache = try KVCache(model: model, encoded: encoded, initialPositions: capacity)
        rowSlots = try cache.admit(inputs: rowInput)
        try reserve(tokens: rowInput.count, queries: 1, keys: max(cache.initialPositions, cache.sourceLength))
    }

    /// Appends `tokens` (T, row-major) to every row of `rowSlots`, T each, and computes the logits of each
    /// (N·T, V) into `logits`. Returns T.
    /// `blockInput(b, x)`, when given, receives the residual stream entering block b, (N·T, D), before it runs.
    @discardableResult
    func forward(tokens: [Int], blockInput: ((Int, UnsafePointer<Float>) -> Void)? = nil) throws(T5Error) -> Int {
        precondition(tokens.count % rows == 0, "tokens must be (rows, T)")
        let t = tokens.count / rows
        try forward(slots: rowSlots, tokens: tokens, counts: [Int](repeating: t, count: rows), blockInput: blockInput)
        return t
    }

    /// Beam search bookkeeping over `rowSlots`: row r continues the sequence that was in row `sources[r]`.
    func reorder(_ sources: [Int]) throws(T5Error) {
        precondition(sources.count == rows)
        try cache.reorder(rowSlots, from: sources.map { rowSlots[$0] })
    }

    /// The scratch bytes for `n` tokens and `scores` floats of attention scores, nil on overflow.
    private func scratchBytes(tokens n: Int, scores: Int) -> Int? {
        let c = model.config, hk = model.innerDim
        return MemoryBudget.sum([
            MemoryBudget.floats(n, c.dModel, 2), MemoryBudget.floats(n, hk, 4),
            MemoryBudget.floats(n, c.dFF, c.isGatedActivation ? 2 : 1), MemoryBudget.floats(n, c.vocabSize),
            MemoryBudget.floats(scores),
        ])
    }

    /// Makes the scratch buffers hold `n` tokens, and attention scores of up to `queries` rows over `keys`
    /// positions per worker. The score scratch at least doubles when it grows: the keys grow by one every
    /// step, and a step that fits must neither allocate nor ask the system for the memory available.
    private func reserve(tokens n: Int, queries: Int, keys: Int) throws(T5Error) {
        guard let slice = MemoryBudget.product([queries, keys]), let scoreCount = MemoryBudget.product([Parallel.threads, slice]) else {
            throw .tooLarge(what: "decoding \(n) tokens", bytes: nil, available: MemoryBudget.available())
        }
        guard n > tokenCapacity || scoreCount > scores.count else { return }
        let scoreFloats = scoreCount > scores.count ? max(scoreCount, scores.count <= Int.max / 2 ? 2 * scores.count : 0) : scores.count
        guard let bytes = scratchBytes(tokens: max(n, tokenCapacity), scores: scoreFloats) else {
            throw .tooLarge(what: "decoding \(n) tokens", bytes: nil, available: MemoryBudget.available())
        }
        try MemoryBudget.require(bytes, for: "decoding \(n) token\(n == 1 ? "" : "s")")
        if scoreFloats > scores.count { scores = Tensor(zeros: [scoreFloats]) }
        guard n > tokenCapacity else { return }
        let c = model.config, hk = model.innerDim
        tokenCapacity = n
        x = Tensor(zeros: [n, c.dModel]); h = Tensor(zeros: [n, c.dModel])
        q = Tensor(zeros: [n, hk]); k = Tensor(zeros: [n, hk]); v = Tensor(zeros: [n, hk]); attn = Tensor(zeros: [n, hk])
        ff = Tensor(zeros: [n, c.dFF]); ffLinear = Tensor(zeros: c.isGatedActivation ? [n, c.dFF] : [0])
        tokenIDs = [Int32](repeating: 0, count: n)
        logits = Tensor(zeros: [n, c.vocabSize])
    }

    /// Appends `counts[i]` tokens to slot `slots[i]` (the rows' tokens back to back in `tokens`), at
    /// positions `length(of: slot) ..<` its length plus the count, and computes the logits of every token
    /// into `logits`, in the same order.
    /// `blockInput(b, x)`, when given, receives the residual stream entering block b, (tokens, D).
    func forward(slots: [KVCache.Slot], tokens: [Int], counts rowCounts: [Int], blockInput: ((Int, UnsafePointer<Float>) -> Void)? = nil) throws(T5Error) {
        precondition(slots.count == rowCounts.count && tokens.count == rowCounts.reduce(0, +), "one count per slot, one token per count")
        rowFirst.removeAll(keepingCapacity: true)
        rowPosition.removeAll(keepingCapacity: true)
        rowCount.removeAll(keepingCapacity: true)
        var n = 0, longest = 1, keyBound = cache.sourceLength
        for (slot, t) in zip(slots, rowCounts) {
            try cache.reserve(slot, adding: t)
            rowFirst.append(n)
            rowPosition.append(cache.length(of: slot))
            rowCount.append(t)
            n += t
            longest = max(longest, t)
            keyBound = max(keyBound, cache.length(of: slot) + t)
        }
        guard n > 0 else { return }
        try reserve(tokens: n, queries: longest, keys: keyBound)
        let slice = longest * keyBound
        // Locals, not properties, for the worker threads to read.
        let first = rowFirst, positions = rowPosition, counts = rowCount
        let c = model.config, w = model.weights
        let d = c.dModel, hk = model.innerDim, dk = c.dKV
        for i in 0..<n { tokenIDs[i] = Int32(tokens[i]) }
        tokenIDs.withUnsafeBufferPointer { ids in
            Embedding.forward(ids: ids.baseAddress.unsafelyUnwrapped, count: n, table: w.shared.pointer, dim: d, into: x.pointer)
        }
        for (layer, block) in w.decoderBlocks.enumerated() {
            blockInput?(layer, x.pointer)
            let bias = model.decoderBiases[layer]
            // Causal self-attention over the slot's cache plus its new tokens (T5LayerSelfAttention).
            RMSNorm.forward(x.pointer, weight: block.selfAttentionNorm.pointer, epsilon: c.layerNormEpsilon, rows: n, dim: d, into: h.pointer)
            GEMM.linear(h.pointer, rows: n, weight: block.selfAttention.q, into: q.pointer)
            GEMM.linear(h.pointer, rows: n, weight: block.selfAttention.k, into: k.pointer)
            GEMM.linear(h.pointer, rows: n, weight: block.selfAttention.v, into: v.pointer)
            for (r, slot) in slots.enumerated() {
                let dst = positions[r] * hk
                (cache.keys(of: slot, layer: layer) + dst).update(from: k.pointer + first[r] * hk, count: counts[r] * hk)
                (cache.values(of: slot, layer: layer) + dst).update(from: v.pointer + first[r] * hk, count: counts[r] * hk)
            }
            forEachRowAndHead(counts, keyLength: { positions[$0] + counts[$0] }, slice: slice) { r, head, scratch in
                let slot = slots[r], t = counts[r], offset = first[r] * hk + head * dk
                Attention.forward(
                    q: q.pointer + offset, ldq: hk,
                    keys: cache.keys(of: slot, layer: layer) + head * dk, ldk: hk,
                    values: cache.values(of: slot, layer: layer) + head * dk, ldv: hk,
                    queries: t, keyLength: positions[r] + t, headDim: dk,
                    firstPosition: positions[r], causal: true,
                    bias: .relative(bias.center(head), maxDistance: bias.maxDistance),
                    scores: scratch, out: attn.pointer + offset, ldo: hk)
            }
            GEMM.linear(attn.pointer, rows: n, weight: block.selfAttention.o, into: x.pointer, accumulate: true)

            // Cross-attention over the encoder output of the slot's input (T5LayerCrossAttention, no bias).
            if let cross = block.crossAttention, let norm = block.crossAttentionNorm {
                RMSNorm.forward(x.pointer, weight: norm.pointer, epsilon: c.layerNormEpsilon, rows: n, dim: d, into: h.pointer)
                GEMM.linear(h.pointer, rows: n, weight: cross.q, into: q.pointer)
                let ck = cache.crossKeys[layer].pointer, cv = cache.crossValues[layer].pointer
                let sourceLength = cache.sourceLength
                forEachRowAndHead(counts, keyLength: { _ in sourceLength }, slice: slice) { r, head, scratch in
                    let input = cache.input(of: slots[r]), offset = first[r] * hk + head * dk
                    let src = input * sourceLength * hk + head * dk
                    Attention.forward(
                        q: q.pointer + offset, ldq: hk,
                        keys: ck + src, ldk: hk, values: cv + src, ldv: hk,
                        queries: counts[r], keyLength: cache.sourceLengths[input], headDim: dk,
                        firstPosition: 0, causal: false, bias: .none,
                        scores: scratch, out: attn.pointer + offset, ldo: hk)
                }
                GEMM.linear(attn.pointer, rows: n, weight: cross.o, into: x.pointer, accumulate: true)
            }

            RMSNorm.forward(x.pointer, weight: block.feedForwardNorm.pointer, epsilon: c.layerNormEpsilon, rows: n, dim: d, into: h.pointer)
            model.feedForward(block.feedForward, normed: h.pointer, rows: n, hidden: ff.pointer, linear: ffLinear.pointer, residual: x.pointer)
        }
        RMSNorm.forward(x.pointer, weight: w.decoderNorm.pointer, epsilon: c.layerNormEpsilon, rows: n, dim: d, into: h.pointer)
        if c.rescalesDecoderOutput {
            // Original T5 ties the LM head to the embedding and rescales by d_model^-0.5 first
            // (T5ForConditionalGeneration.forward: `sequence_output * (self.model_dim**-0.5)`).
            Vector.scale(h.pointer, by: Float(1 / Double(d).squareRoot()), n * d)
        }
        GEMM.linear(h.pointer, rows: n, weight: w.lmHead, into: logits.pointer)
        for (slot, t) in zip(slots, rowCounts) { cache.advance(slot, by: t) }
    }

    /// Runs `body(row, head, scores)` for every (row, head) pair of the rows whose query counts are
    /// `counts`, split across the worker threads; each worker gets its own `scores` scratch of `slice` floats.
    private func forEachRowAndHead(_ counts: [Int], keyLength: (Int) -> Int, slice: Int, _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        let rows = counts.count, heads = model.config.numHeads, pairs = rows * heads
        var cost = 0
        for r in 0..<rows { cost += counts[r] * keyLength(r) }
        // The scratch was sized for the thread count at `reserve`; never use more slices than it holds.
        let parts = min(Parallel.chunks(pairs, cost: cost * heads * model.config.dKV * 2), scores.count / max(slice, 1))
        let per = (pairs + parts - 1) / parts
        let scratch = scores.pointer
        Parallel.run(parts) { p in
            for pair in (p * per)..<min(pairs, (p + 1) * per) {
                body(pair / heads, pair % heads, scratch + p * slice)
            }
        }
    }
}
