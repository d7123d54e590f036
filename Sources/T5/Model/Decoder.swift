/// Per-request decoder state: the self-attention KV cache, the cross-attention keys and values (computed
/// once per input), and the buffers a step reuses. The cache grows by doubling as tokens are generated, so
/// memory follows the work done rather than `max_new_tokens`, and a growth that would not fit in memory throws
/// before allocating. A step is the decoder `T5Stack`'s forward with this state as its `DecoderCache`.
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

    /// The buffers of a step (`T5Stack.forward` in place); reused by the next, grown when a step needs more.
    private let workspace = Workspace()
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
                Self.stepBytes(model: model, tokens: rows, keys: max(self.capacity, sourceLength)),
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
    }

    /// The bytes a step over `tokens` tokens needs besides the cache: the residual stream and one sub-layer's
    /// temporaries (T5Stack.forward in place), the attention scores, the logits; nil on overflow.
    private static func stepBytes(model: T5Model, tokens n: Int, keys: Int) -> Int? {
        let c = model.config, hk = model.innerDim
        return MemoryBudget.sum([
            MemoryBudget.floats(n, c.dModel, 2), MemoryBudget.floats(n, hk, 4),
            MemoryBudget.floats(n, c.dFF, c.isGatedActivation ? 2 : 1), MemoryBudget.floats(n, c.vocabSize),
            MemoryBudget.floats(Parallel.threads, n, keys),
        ])
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
    /// the logits of each (N·T, V) into `logits`: the decoder `T5Stack` over the rows with this state as its
    /// cache, then the LM head. Returns T.
    ///
    /// `blockInput(b, x)`, when given, receives the residual stream entering block b, (N·T, D), before it runs.
    @discardableResult
    func forward(tokens: [Int], blockInput: ((Int, UnsafePointer<Float>) -> Void)? = nil) throws(T5Error) -> Int {
        precondition(tokens.count % rows == 0, "tokens must be (rows, T)")
        guard let decoder = model.decoder, let head = model.head else { throw .noDecoder(architecture: model.architecture) }
        let t = tokens.count / rows, n = tokens.count
        if length + t > capacity { try grow(to: length + t) }
        if logits.count < n * model.config.vocabSize {
            guard let bytes = Self.stepBytes(model: model, tokens: n, keys: max(capacity, sourceLength)) else {
                throw .tooLarge(what: "decoding \(rows) rows of \(t) tokens", bytes: nil, available: MemoryBudget.available())
            }
            try MemoryBudget.require(bytes, for: "decoding \(rows) row\(rows == 1 ? "" : "s") of \(t) token\(t == 1 ? "" : "s")")
            logits = Tensor(zeros: [n, model.config.vocabSize])
        }
        workspace.reset()
        var unused = SeededGenerator(seed: 0)  // no dropout in inference: never drawn from
        let rowBatch = RowBatch(lengths: [Int](repeating: t, count: rows), positions: [Int](repeating: length, count: rows))
        let decoded = decoder.forward(
            ids: tokens.map { Int32($0) }, rows: rowBatch, memory: nil, cache: self, workspace: workspace, record: false,
            generator: &unused, blockInput: blockInput)
        head.forward(decoded.output.pointer, rows: n, into: logits.pointer)
        length += t
        return t
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

extension DecoderState: DecoderCache {
    func append(block: Int, sequence r: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, count: Int) -> KeyValueRows {
        let hk = model.innerDim, row = r * capacity * hk
        let cacheK = selfKeys[block].pointer + row, cacheV = selfValues[block].pointer + row
        (cacheK + length * hk).update(from: keys, count: count * hk)
        (cacheV + length * hk).update(from: values, count: count * hk)
        return KeyValueRows(keys: cacheK, values: cacheV, stride: hk, length: length + count)
    }

    func memory(block: Int, sequence r: Int) -> KeyValueRows {
        let hk = model.innerDim, input = rowInput[r], offset = input * sourceLength * hk
        return KeyValueRows(
            keys: crossKeys[block].pointer + offset, values: crossValues[block].pointer + offset, stride: hk,
            length: sourceLengths[input])
    }
}
