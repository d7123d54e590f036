/// Greedy search and multinomial sampling over a batch (transformers' `_sample`): one row per input, each
/// step picks the argmax (or a draw) of the processed logits; a finished row is fed padding until the whole
/// batch is done, which leaves the other rows' results unchanged.
struct TokenSearch {
    let model: T5Model
    let options: GenerationOptions

    /// Returns, per input, the generated ids (ending with eos when generated) and the sum of their log-probs
    /// under the processed distribution. `onToken(row, id)` is called as each token is chosen.
    func run(encoded: EncoderOutput, onToken: ((Int, Int) -> Void)? = nil) -> [(ids: [Int], score: Float)] {
        let c = model.config, v = c.vocabSize, b = encoded.batch
        let state = DecoderState(model: model, encoded: encoded, rowInput: Array(0..<b), capacity: options.maxNewTokens)
        let processors = LogitsProcessors(options: options, eosID: c.eosTokenID)
        var sampler = options.sample ? Sampler(options: options, seed: options.seed) : nil
        // Sized for the whole generation up front, so appending never reallocates during a step.
        var histories = (0..<b).map { _ in
            var h = [c.decoderStartTokenID]
            h.reserveCapacity(options.maxNewTokens + 1)
            return h
        }
        var generated = (0..<b).map { _ in
            var g = [Int]()
            g.reserveCapacity(options.maxNewTokens)
            return g
        }
        var scores = [Float](repeating: 0, count: b)
        var finished = [Bool](repeating: false, count: b)
        var next = [Int](repeating: c.decoderStartTokenID, count: b)

        // Greedy batches: each row's processors, argmax and normalizer, computed for all rows across the
        // threads before the bookkeeping (a few passes over V floats per row, the rest of a step's time).
        var picked = [Int](repeating: 0, count: b), normalizers = [Float](repeating: 0, count: b)
        let parallelRows = sampler == nil && b > 1

        for step in 0..<options.maxNewTokens {
            state.forward(tokens: next)
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
                if finished[r] { next[r] = c.padTokenID; continue }
                let row = state.logits.pointer + r * v
                let token: Int
                if parallelRows {
                    token = picked[r]
                    scores[r] += row[token] - normalizers[r]
                } else {
                    processors.apply(row, vocabulary: v, history: histories[r], generated: step)
                    sampler?.warp(row, v)
                    token = sampler?.draw(row, v) ?? argmax(row, v)
                    scores[r] += row[token] - Softmax.logSumExp(row, v)
                }
                histories[r].append(token)
                generated[r].append(token)
                onToken?(r, token)
                next[r] = token
                if token == c.eosTokenID { finished[r] = true }
            }
            if !finished.contains(false) { break }
        }
        return (0..<b).map { (generated[$0], scores[$0]) }
    }
}

/// Index of the largest score; the first one on ties, like torch.argmax.
@inline(__always)
func argmax(_ x: UnsafePointer<Float>, _ n: Int) -> Int {
    Vector.argmax(x, n)
}
