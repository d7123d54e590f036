/// What a search step did to one of its rows.
enum RowEvent: Equatable, Sendable {
    /// `id` was appended to the row's sequence.
    case token(row: Int, id: Int)
    /// The row now continues the sequence row `source` held before the step (beam search): its cache must
    /// follow (CTranslate2's `gather_state`, transformers' `_reorder_cache`).
    case continues(row: Int, source: Int)
    /// The row is done: the decode loop stops stepping it and releases its cache slot.
    case finished(row: Int)
}

/// The logits of one decoder step, one (V) row per live search row: `row(i)` belongs to search row `rows[i]`.
struct LogitRows {
    let base: UnsafeMutablePointer<Float>
    let rows: [Int]
    let vocabulary: Int

    @inline(__always)
    func row(_ i: Int) -> UnsafeMutablePointer<Float> { base + i * vocabulary }
}

/// A decoding search as a step function over rows (CTranslate2's `SearchStrategy`,
/// `include/ctranslate2/decoding.h`): the decode loop (`DecodeLoop`) runs the decoder over the rows still
/// live, hands their logits to `step`, and drops the rows `step` reports finished. The search owns no cache
/// and no loop, so rows can leave (finished or cancelled) at any step.
protocol SearchStrategy {
    associatedtype Output
    /// The encoder row each search row reads.
    var rowInputs: [Int] { get }
    /// The token row `row` feeds the decoder at its next step.
    func nextToken(of row: Int) -> Int
    /// Chooses the next token of every row in `logits.rows` (changing the logits in place), appending what
    /// happened to `events`. Every row not reported finished is stepped again.
    mutating func step(_ logits: LogitRows, events: inout [RowEvent]) throws(T5Error)
    /// The search's result once every row has finished.
    func output() -> Output
}

/// Per-row bookkeeping of greedy search and sampling: each row's ids so far (from the decoder start token),
/// and the log-probs of the tokens it chose under the processed distribution.
struct TokenRows {
    var histories: [[Int]]
    var scores: [Float]
    var tokenScores: [[Float]]
    let maxNewTokens: Int
    let eos: [Int]

    init(rows: Int, start: Int, maxNewTokens: Int, eos: [Int], initialPositions: Int) {
        histories = (0..<rows).map { _ in
            var h = [start]
            h.reserveCapacity(initialPositions + 1)
            return h
        }
        scores = [Float](repeating: 0, count: rows)
        tokenScores = [[Float]](repeating: [], count: rows)
        self.maxNewTokens = maxNewTokens
        self.eos = eos
    }

    /// Tokens row `r` has generated.
    func generated(_ r: Int) -> Int { histories[r].count - 1 }

    /// Appends `token` (of log-prob `logprob`) to row `r`; reports it, and the row's end at eos or at
    /// `maxNewTokens`.
    mutating func append(_ token: Int, logprob: Float, to r: Int, events: inout [RowEvent]) {
        scores[r] += logprob
        tokenScores[r].append(logprob)
        histories[r].append(token)
        events.append(.token(row: r, id: token))
        if eos.contains(token) || generated(r) >= maxNewTokens { events.append(.finished(row: r)) }
    }

    /// Per row: the generated ids (ending with eos when generated), their summed and per-token log-probs.
    func output() -> [(ids: [Int], score: Float, tokenScores: [Float])] {
        histories.indices.map { (Array(histories[$0].dropFirst()), scores[$0], tokenScores[$0]) }
    }

    /// log Σ exp of a processed row is finite exactly when the row holds no NaN or +∞ and allows a token:
    /// one check per row and step, on a number each step computes anyway. A NaN would otherwise pick token
    /// 0 (pad) and decode as an empty line.
    static func checkNormalizer(_ normalizer: Float, of row: UnsafePointer<Float>, _ v: Int, step: Int, sequence: Int) throws(T5Error) {
        if normalizer.isFinite { return }
        let position = "decoding step \(step + 1), sequence \(sequence + 1)"
        if normalizer == -.infinity && !(0..<v).contains(where: { row[$0].isNaN }) {
            throw .nonFinite(what: "\(position): every token has probability 0 after the logits processors")
        }
        throw .nonFinite(what: "the logits of \(position) (the model's activations overflowed, or a sampling temperature scaled them past the float range)")
    }
}

/// Greedy search (transformers' `_sample` with `do_sample=False`): each row takes the argmax of its
/// processed logits until eos or `maxNewTokens`.
struct GreedySearch: SearchStrategy {
    let rowInputs: [Int]
    private let processors: LogitsProcessors
    private var rows: TokenRows
    // Each live row's argmax and normalizer, computed for all rows across the threads before the bookkeeping
    // (a few passes over V floats per row, the rest of a step's time).
    private var picked: [Int], normalizers: [Float]

    init(model: T5Model, options: GenerationOptions, rowInputs: [Int], initialPositions: Int) {
        self.rowInputs = rowInputs
        processors = LogitsProcessors(options: options, eosIDs: model.eosTokenIDs)
        rows = TokenRows(rows: rowInputs.count, start: model.decoderStartTokenID, maxNewTokens: options.maxNewTokens, eos: model.eosTokenIDs, initialPositions: initialPositions)
        picked = [Int](repeating: 0, count: rowInputs.count)
        normalizers = [Float](repeating: 0, count: rowInputs.count)
    }

    func nextToken(of row: Int) -> Int { rows.histories[row].last.unsafelyUnwrapped }

    mutating func step(_ logits: LogitRows, events: inout [RowEvent]) throws(T5Error) {
        let n = logits.rows.count, v = logits.vocabulary, processors = processors
        rows.histories.withUnsafeBufferPointer { history in
            picked.withUnsafeMutableBufferPointer { picked in
                normalizers.withUnsafeMutableBufferPointer { normalizers in
                    Parallel.forEachSlice(n, cost: n * v * 4) { slice in
                        for i in slice {
                            let r = logits.rows[i], row = logits.row(i)
                            processors.apply(row, vocabulary: v, history: history[r], generated: history[r].count - 1)
                            picked[i] = argmax(row, v)
                            normalizers[i] = Softmax.logSumExp(row, v)
                        }
                    }
                }
            }
        }
        for (i, r) in logits.rows.enumerated() {
            let row = logits.row(i), token = picked[i]
            try TokenRows.checkNormalizer(normalizers[i], of: row, v, step: rows.generated(r), sequence: r)
            rows.append(token, logprob: row[token] - normalizers[i], to: r, events: &events)
        }
    }

    func output() -> [(ids: [Int], score: Float, tokenScores: [Float])] { rows.output() }
}

/// Multinomial sampling (transformers' `_sample` with `do_sample=True`): the processors, then temperature,
/// top-k and top-p, then a draw from the one seeded generator, row after row in row order, so that a seed
/// reproduces every row's draws whatever rows have finished.
struct SamplingSearch: SearchStrategy {
    let rowInputs: [Int]
    private let processors: LogitsProcessors
    private var rows: TokenRows
    private var sampler: Sampler

    init(model: T5Model, options: GenerationOptions, rowInputs: [Int], initialPositions: Int) {
        self.rowInputs = rowInputs
        processors = LogitsProcessors(options: options, eosIDs: model.eosTokenIDs)
        rows = TokenRows(rows: rowInputs.count, start: model.decoderStartTokenID, maxNewTokens: options.maxNewTokens, eos: model.eosTokenIDs, initialPositions: initialPositions)
        sampler = Sampler(options: options, seed: options.seed)
    }

    func nextToken(of row: Int) -> Int { rows.histories[row].last.unsafelyUnwrapped }

    mutating func step(_ logits: LogitRows, events: inout [RowEvent]) throws(T5Error) {
        let v = logits.vocabulary
        for (i, r) in logits.rows.enumerated() {
            let row = logits.row(i), step = rows.generated(r)
            processors.apply(row, vocabulary: v, history: rows.histories[r], generated: step)
            sampler.warp(row, v)
            let normalizer = Softmax.logSumExp(row, v)
            try TokenRows.checkNormalizer(normalizer, of: row, v, step: step, sequence: r)
            let token = sampler.draw(row, v, logSumExp: normalizer)
            rows.append(token, logprob: row[token] - normalizer, to: r, events: &events)
        }
    }

    func output() -> [(ids: [Int], score: Float, tokenScores: [Float])] { rows.output() }
}

/// Index of the largest score; the first one on ties, like torch.argmax.
@inline(__always)
func argmax(_ x: UnsafePointer<Float>, _ n: Int) -> Int {
    Vector.argmax(x, n)
}
