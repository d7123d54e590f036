/// How an input's token states become one vector.
public enum Pooling: String, Sendable, CaseIterable {
    /// The mean over the input's tokens, `</s>` included (sentence-transformers' masked mean pooling:
    /// padding never counts; with `padTo`, every position of the padded input does, as nothing is masked).
    case mean
    /// The first token's state (sentence-transformers' `cls` pooling).
    case first
}

/// How texts are turned into encoder inputs for embedding.
public struct EmbeddingOptions: Sendable, Equatable {
    /// Refuse an input longer than this many tokens (`</s>` included).
    public var maxInputTokens: Int?
    /// Cut an input longer than this to its first `n - 1` tokens and `</s>` (transformers' tokenizer with
    /// `truncation=True, max_length=n`; sentence-transformers' `max_seq_length`).
    public var truncateTo: Int?
    /// Pad every input with pad ids to exactly this many tokens and attend to all of them (no attention
    /// mask), as Flux and Stable Diffusion 3 run their T5 encoder; inputs longer are truncated to it.
    public var padTo: Int?

    public init(maxInputTokens: Int? = nil, truncateTo: Int? = nil, padTo: Int? = nil) {
        self.maxInputTokens = maxInputTokens
        self.truncateTo = truncateTo
        self.padTo = padTo
    }

    /// Throws `.invalidOption` for a limit below 1 (2 for truncation, which keeps `</s>`).
    public func validate() throws(T5Error) {
        if let n = maxInputTokens, n < 1 { throw .invalidOption(name: "EmbeddingOptions.maxInputTokens", reason: "must be at least 1, got \(n)") }
        if let n = truncateTo, n < 2 { throw .invalidOption(name: "EmbeddingOptions.truncateTo", reason: "must be at least 2 (a token and </s>), got \(n)") }
        if let n = padTo, n < 2 { throw .invalidOption(name: "EmbeddingOptions.padTo", reason: "must be at least 2 (a token and </s>), got \(n)") }
    }
}

/// The encoder's states of one input: `tokens` rows of `dim` values (the last hidden state of
/// transformers' `T5EncoderModel`, after the final norm).
public struct HiddenStates: Sendable, Equatable {
    public let ids: [Int]
    public let dim: Int
    /// Row-major (tokens, dim).
    public let values: [Float]

    public var tokens: Int { ids.count }
    /// The state of token `t`.
    public func row(_ t: Int) -> ArraySlice<Float> { values[(t * dim)..<((t + 1) * dim)] }
}

extension T5Model {
    /// Inputs encoded in one batch: bounded so that a long list of texts does not hold every padded
    /// activation at once (the encoder's memory is per batch).
    static let embeddingBatch = 32

    /// The ids `options` feed the encoder for `text`.
    public func embeddingIDs(_ text: String, options: EmbeddingOptions = .init()) throws(T5Error) -> [Int] {
        var ids = tokenizer.encode(text)
        let eos = eosTokenIDs.first ?? 1
        if let n = options.truncateTo ?? options.padTo, ids.count > n { ids = Array(ids.prefix(n - 1)) + [eos] }
        if let limit = options.maxInputTokens, ids.count > limit { throw .inputTooLong(tokens: ids.count, limit: limit) }
        if let n = options.padTo { ids += Array(repeating: config.padTokenID, count: n - ids.count) }
        return ids
    }

    /// The encoder's last hidden state for each text, batched (inputs of similar length together, results
    /// in the order given). Works on encoder-only checkpoints and full ones alike.
    public func hiddenStates(_ texts: [String], options: EmbeddingOptions = .init()) throws(T5Error) -> [HiddenStates] {
        try options.validate()
        var inputs = [[Int]]()
        for text in texts { inputs.append(try embeddingIDs(text, options: options)) }
        return try hiddenStates(ids: inputs)
    }

    /// The encoder's last hidden state for each id sequence (used as given: no eos added, no truncation).
    public func hiddenStates(ids inputs: [[Int]]) throws(T5Error) -> [HiddenStates] {
        let d = config.dModel
        var results = [HiddenStates?](repeating: nil, count: inputs.count)
        let order = inputs.indices.sorted { inputs[$0].count < inputs[$1].count }
        for start in stride(from: 0, to: order.count, by: Self.embeddingBatch) {
            let part = Array(order[start..<min(order.count, start + Self.embeddingBatch)])
            let encoded = try encode(part.map { inputs[$0] })
            let s = encoded.sourceLength
            for (row, index) in part.enumerated() {
                let n = inputs[index].count
                let base = encoded.hidden.pointer + row * s * d
                results[index] = HiddenStates(ids: inputs[index], dim: d, values: Array(UnsafeBufferPointer(start: base, count: n * d)))
            }
        }
        return results.map { $0! }
    }

    /// One vector per text: the encoder's states pooled, then scaled to unit length when `normalize`.
    /// Throws `.nonFinite` if a state overflowed (a vector of NaNs is never returned).
    public func embed(_ texts: [String], pooling: Pooling = .mean, normalize: Bool = false, options: EmbeddingOptions = .init()) throws(T5Error) -> [[Float]] {
        try pooled(hiddenStates(texts, options: options), pooling: pooling, normalize: normalize)
    }

    /// `embed` over id sequences used as given.
    public func embed(ids inputs: [[Int]], pooling: Pooling = .mean, normalize: Bool = false) throws(T5Error) -> [[Float]] {
        try pooled(hiddenStates(ids: inputs), pooling: pooling, normalize: normalize)
    }

    private func pooled(_ states: [HiddenStates], pooling: Pooling, normalize: Bool) throws(T5Error) -> [[Float]] {
        try states.enumerated().map { (i, states) throws(T5Error) in
            var vector = Self.pool(states, pooling)
            if normalize { Self.normalize(&vector) }
            guard vector.allSatisfy(\.isFinite) else { throw .nonFinite(what: "the embedding of input \(i + 1)") }
            return vector
        }
    }

    /// sentence-transformers' Pooling: the masked mean sums in fp32 over the tokens, then divides by their
    /// count (`sum_embeddings / sum_mask`).
    static func pool(_ states: HiddenStates, _ pooling: Pooling) -> [Float] {
        switch pooling {
        case .first:
            return Array(states.row(0))
        case .mean:
            var sum = [Float](repeating: 0, count: states.dim)
            for t in 0..<states.tokens {
                for (j, x) in states.row(t).enumerated() { sum[j] += x }
            }
            let count = Float(max(1, states.tokens))
            return sum.map { $0 / count }
        }
    }

    /// x / max(‖x‖₂, 1e-12), torch.nn.functional.normalize as sentence-transformers' Normalize applies it.
    static func normalize(_ x: inout [Float]) {
        let norm = max(x.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        for i in x.indices { x[i] /= norm }
    }
}
