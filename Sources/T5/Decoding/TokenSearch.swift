/// Greedy search and multinomial sampling over a batch (transformers' `_sample`): one row per input, each
/// step picks the argmax (or a draw) of the processed logits; a finished row is fed padding until the whole
/// batch is done, which leaves the other rows' results unchanged.
struct TokenSearch {
    let model: T5Model
    let options: GenerationOptions

    /// Returns, per input, the generated ids (ending with eos when generated) and the sum of their log-probs
    /// under the processed distribution. `onToken(row, id)` is called as each token is chosen; an error it
    /// throws (a stream's consumer left) ends the search.
    ///
    /// Throws `.nonFinite` when a step's processed logits hold a NaN or +∞ (or allow no token), `.cancelled`
    /// when the calling task is cancelled (checked every step), and `.tooLarge` when the cache cannot grow.
    func run(encoded: EncoderOutput, onToken: ((Int, Int) throws(T5Error) -> Void)? = nil) throws(T5Error) -> [(ids: [Int], score: Float, tokenScores: [Float])] {
        let c = model.config, v = c.vocabSize, b = encoded.batch
        // The cache and histories start at a modest size and grow with the output: memory follows the tokens
        // generated, not `max_new_tokens` (which may be huge, waiting for eos).
        let initial = min(options.maxNewTokens, Self.initialPositions)
        let state = try DecoderState(model: model, encoded: encoded, rowInput: Array(0..<b), capacity: initial)
        let processors = LogitsProcessors(options: options, eosIDs: model.eosTokenIDs)
        let eos = model.eosTokenIDs, start = model.decoderStartTokenID
        var sampler = options.sample ? Sampler(options: options, seed: options.seed) : nil
        var histories = (0..<b).map { _ in
            var h = [start]
            h.reserveCapacity(initial + 1)
            return h
        }
        var generated = (0..<b).map { _ in
            var g = [Int]()
            g.reserveCapacity(initial)
            return g
        }
        var scores = [Float](repeating: 0, count: b)
        var tokenScores = [[Float]](repeating: [], count: b)
        var finished = [Bool](repeating: false, count: b)
        var next = [Int](repeating: start, count: b)

        // Greedy batches: each row's processors, argmax and normalizer, computed for all rows across the
        // threads before the bookkeeping (a few passes over V floats per row, the rest of a step's time).
        var picked = [Int](repeating: 0, count: b), normalizers = [Float](repeating: 0, count: b)
        let parallelRows = sampler == nil && b > 1

        for step in 0..<options.maxNewTokens {
            if Task.isCancelled { throw .cancelled }
            try state.forward(tokens: next)
            if parallelRows {
                let logits = state.logits.pointer, done = finished
                histories.withUnsafeBufferPointer { history in
                    picked.withUnsafeMutableBufferPointer { picked in
                        normalizers.withUnsafeMutableBufferPointer { normalizers in
                            let parts = Parallel.chunks(b, cost: b * v * 4)
                            let per = (b + parts - 1) / parts
                            Parallel.run(parts) { p in
                                for r in (p * per)..<min(b, (p + 1) * per) where !done[r] {
                                    let row = logits + r * v
                                    processors.apply(row, vocabulary: v, history: history[r], generated: step)
                                    picked[r] = argmax(row, v)
                                    normalizers[r] = Softmax.logSumExp(row, v)
                                }
                            }
                        }
                    }
                }
            }
            for r in 0..<b {
                if finished[r] { next[r] = model.padTokenID; continue }
                let row = state.logits.pointer + r * v
                let token: Int
                let normalizer: Float
                if parallelRows {
                    token = picked[r]
                    normalizer = normalizers[r]
                    try Self.checkNormalizer(normalizer, of: row, v, step: step, sequence: r)
                } else {
                    processors.apply(row, vocabulary: v, history: histories[r], generated: step)
                    sampler?.warp(row, v)
                    normalizer = Softmax.logSumExp(row, v)
                    try Self.checkNormalizer(normalizer, of: row, v, step: step, sequence: r)
                    token = sampler?.draw(row, v, logSumExp: normalizer) ?? argmax(row, v)
                }
                scores[r] += row[token] - normalizer
                tokenScores[r].append(row[token] - normalizer)
                histories[r].append(token)
                generated[r].append(token)
                try onToken?(r, token)
                next[r] = token
                if eos.contains(token) { finished[r] = true }
            }
            if !finished.contains(false) { break }
        }
        return (0..<b).map { (generated[$0], scores[$0], tokenScores[$0]) }
    }

    /// Decoder positions allocated before the cache first grows.
    static let initialPositions = 64

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

/// Index of the largest score; the first one on ties, like torch.argmax.
@inline(__always)
func argmax(_ x: UnsafePointer<Float>, _ n: Int) -> Int {
    Vector.argmax(x, n)
}
