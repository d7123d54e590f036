/// The decoder's forward over a changing set of sequences: each live slot of a `KVCache` appends its own
/// number of tokens at its own position (the slot's length), and the logits of every appended token come
/// out in `logits`. One token per live slot while generating; a whole target per slot (rows may differ in
/// length) when scoring with teacher forcing. A step is the decoder `T5Stack`'s forward over the slots' rows
/// (`RowBatch` positions = the slots' lengths) with the cache as its `DecoderCache`, then the LM head. Its
/// buffers are reused (grown rarely), and a growth that would not fit in memory throws before allocating.
final class DecoderState {
    let model: T5Model
    let cache: KVCache
    /// The slots admitted by `init(model:encoded:rowInput:capacity:)`, one per row, for callers that decode
    /// a fixed set of rows (`forward(tokens:)`, `reorder(_:)`).
    let rowSlots: [KVCache.Slot]
    var rows: Int { rowSlots.count }
    /// Decoder positions the largest slot holds before it next grows.
    var capacity: Int { cache.capacity }

    /// The buffers of a step (`T5Stack.forward` in place); reused by the next, grown when a step needs more.
    private let workspace = Workspace()
    /// The tokens, and the keys per row, a step may have without asking for memory again: the memory check
    /// reads the system's figures, so it runs only when a step passes what was checked (the keys bound then
    /// doubles, since the keys grow by one every step).
    private var checkedTokens = 0, checkedKeys = 0
    /// (tokens, V) logits of the last `forward`, the rows' tokens back to back in the order they were given.
    private(set) var logits = Tensor(zeros: [0])
    /// Rows (one per slot and call) the decoder has run, and tokens: what dropping finished rows saves.
    private(set) var rowsRun = 0, tokensRun = 0

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

    /// Checks that a step over `n` tokens, each row with up to `queries` of them attending over up to `keys`
    /// positions, fits in memory (the residual stream, one sub-layer's temporaries, the attention scores, the
    /// logits), and makes `logits` hold n rows.
    private func reserve(tokens n: Int, queries: Int, keys: Int) throws(T5Error) {
        guard n > checkedTokens || keys > checkedKeys || n * model.config.vocabSize > logits.count else { return }
        let c = model.config, hk = model.innerDim
        let keyBound = max(keys, checkedKeys <= Int.max / 2 ? 2 * checkedKeys : keys)
        guard let bytes = MemoryBudget.sum([
            MemoryBudget.floats(n, c.dModel, 2), MemoryBudget.floats(n, hk, 4),
            MemoryBudget.floats(n, c.dFF, c.isGatedActivation ? 2 : 1), MemoryBudget.floats(n, c.vocabSize),
            MemoryBudget.floats(Parallel.threads, queries, keyBound),
        ]) else {
            throw .tooLarge(what: "decoding \(n) tokens", bytes: nil, available: MemoryBudget.available())
        }
        try MemoryBudget.require(bytes, for: "decoding \(n) token\(n == 1 ? "" : "s")")
        checkedTokens = max(n, checkedTokens)
        checkedKeys = keyBound
        if n * c.vocabSize > logits.count { logits = Tensor(zeros: [n, c.vocabSize]) }
    }

    /// Appends `counts[i]` tokens to slot `slots[i]` (the rows' tokens back to back in `tokens`), at
    /// positions `length(of: slot) ..<` its length plus the count, and computes the logits of every token
    /// into `logits`, in the same order.
    /// `blockInput(b, x)`, when given, receives the residual stream entering block b, (tokens, D).
    func forward(slots: [KVCache.Slot], tokens: [Int], counts rowCounts: [Int], blockInput: ((Int, UnsafePointer<Float>) -> Void)? = nil) throws(T5Error) {
        precondition(slots.count == rowCounts.count && tokens.count == rowCounts.reduce(0, +), "one count per slot, one token per count")
        guard let decoder = model.decoder, let head = model.head else { throw .noDecoder(architecture: model.architecture) }
        var positions = [Int](), n = 0, longest = 1, keyBound = cache.sourceLength
        positions.reserveCapacity(slots.count)
        for (slot, t) in zip(slots, rowCounts) {
            try cache.reserve(slot, adding: t)
            positions.append(cache.length(of: slot))
            n += t
            longest = max(longest, t)
            keyBound = max(keyBound, cache.length(of: slot) + t)
        }
        guard n > 0 else { return }
        try reserve(tokens: n, queries: longest, keys: keyBound)
        rowsRun += slots.count
        tokensRun += n
        workspace.reset()
        var unused = SeededGenerator(seed: 0)  // no dropout in inference: never drawn from
        let decoded = decoder.forward(
            ids: tokens.map { Int32($0) }, rows: RowBatch(lengths: rowCounts, positions: positions), memory: nil,
            cache: SlotStep(cache: cache, slots: slots, positions: positions), workspace: workspace, record: false,
            generator: &unused, blockInput: blockInput)
        head.forward(decoded.output.pointer, rows: n, into: logits.pointer)
        for (slot, t) in zip(slots, rowCounts) { cache.advance(slot, by: t) }
    }
}

/// One decoder step's view of a `KVCache`: sequence b of the step is slot `slots[b]`, whose new rows go at
/// `positions[b]`, its length before the step.
private struct SlotStep: DecoderCache {
    let cache: KVCache
    let slots: [KVCache.Slot]
    let positions: [Int]

    func append(block: Int, sequence b: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, count: Int) -> KeyValueRows {
        let slot = slots[b], width = cache.width, at = positions[b] * width
        let cacheKeys = cache.keys(of: slot, layer: block), cacheValues = cache.values(of: slot, layer: block)
        (cacheKeys + at).update(from: keys, count: count * width)
        (cacheValues + at).update(from: values, count: count * width)
        return KeyValueRows(keys: cacheKeys, values: cacheValues, stride: width, length: positions[b] + count)
    }

    func memory(block: Int, sequence b: Int) -> KeyValueRows {
        let input = cache.input(of: slots[b]), width = cache.width
        let offset = cache.sourceFirst[input] * width
        return KeyValueRows(
            keys: cache.crossKeys[block].pointer + offset, values: cache.crossValues[block].pointer + offset,
            stride: width, length: cache.sourceLengths[input])
    }
}
