import Foundation

/// Beam search exactly as transformers 5 implements it (`GenerationMixin._beam_search`): per input, keep
/// `numBeams` running beams; each step take the top 2·numBeams continuations of all beams; those that end
/// (eos, or the length limit) among the top numBeams become finished hypotheses scored
/// `sum_logprobs / generated_length ** length_penalty`; the best unfinished ones run on.
///
/// Scores are accumulated in Float like transformers' float32 tensors, including the −1e9 sentinels that
/// disable a candidate, so that rankings agree to the last bit wherever they are not ties.
///
/// All bookkeeping lives in flat buffers (sequences are rows of `stride` ids) that double, like the decoder
/// cache, when the sequences outgrow them; any other step allocates nothing.
struct BeamSearch {
    let model: T5Model
    let options: GenerationOptions

    private static let disabled: Float = -1.0e9

    private struct Candidate {
        var score: Float
        var beam: Int
        var token: Int
    }

    /// Per input, up to `numReturnSequences` hypotheses, best first.
    ///
    /// Throws `.nonFinite` when a step's logits hold a NaN or +∞, `.cancelled` when the calling task is
    /// cancelled (checked every step), and `.tooLarge` when the buffers cannot grow.
    func run(encoded: EncoderOutput) throws(T5Error) -> [[(ids: [Int], score: Float)]] {
        let c = model.config, v = c.vocabSize, b = encoded.batch, k = options.numBeams
        let eos = model.eosTokenIDs, start = model.decoderStartTokenID, pad = model.padTokenID
        // beams_to_keep = max(2, 1 + number of eos ids) · num_beams
        let (keep, keepOverflow) = k.multipliedReportingOverflow(by: max(2, 1 + eos.count))
        let (rows, rowsOverflow) = b.multipliedReportingOverflow(by: k)
        // Decoder start token + new tokens.
        let maxLength = options.maxNewTokens < Int.max ? 1 + options.maxNewTokens : Int.max
        var stride = min(maxLength, TokenSearch.initialPositions + 1)
        // Candidates, pools and hypotheses per beam are each a few words: counted at 64 bytes a beam-position.
        try MemoryBudget.require(
            keepOverflow || rowsOverflow ? nil : MemoryBudget.product([rows, stride, 64]),
            for: "beam search over \(b) input\(b == 1 ? "" : "s") with \(k) beams")
        let lp = options.lengthPenalty
        let state = try DecoderState(model: model, encoded: encoded, rowInput: (0..<rows).map { $0 / k }, capacity: stride - 1)
        let processors = LogitsProcessors(options: options, eosIDs: eos)

        // Running beams: row r's ids are running[r·stride ..< r·stride + curLen].
        var running = [Int](repeating: pad, count: rows * stride)
        var nextRunning = running
        for r in 0..<rows { running[r * stride] = start }
        var runningScores = [Float](repeating: 0, count: rows)
        for i in 0..<b { for j in 1..<k { runningScores[i * k + j] = Self.disabled } }
        var nextScores = runningScores
        var sources = [Int](repeating: 0, count: rows)
        var next = [Int](repeating: start, count: rows)

        // Finished hypotheses per input: k slots of (ids, length, score, finished), double-buffered for merging.
        var finishedIDs = [Int](repeating: pad, count: b * k * stride)
        var finishedLength = [Int](repeating: 0, count: b * k)
        var finishedScore = [Float](repeating: Self.disabled, count: b * k)
        var finishedFlag = [Bool](repeating: false, count: b * k)
        var mergedIDs = finishedIDs, mergedLength = finishedLength, mergedScore = finishedScore, mergedFlag = finishedFlag
        var heuristicUnsatisfied = [Bool](repeating: true, count: b)

        var candidates = [Candidate]()
        candidates.reserveCapacity(keep)
        var hits = [Bool](repeating: false, count: keep)
        var penalized = [Float](repeating: 0, count: keep)
        var taken = [Bool](repeating: false, count: k + keep)
        var pool = [Float](repeating: 0, count: k + keep)
        var normalizers = [Float](repeating: 0, count: rows)
        var curLen = 1

        /// Re-lays every sequence buffer out with twice the stride (at most `maxLength`).
        func growSequences() throws(T5Error) {
            let newStride = min(maxLength, stride <= Int.max / 2 ? 2 * stride : Int.max)
            try MemoryBudget.require(
                MemoryBudget.product([rows, newStride, 64]),
                for: "beam search sequences of \(newStride) tokens for \(rows) beams")
            func regrown(_ old: [Int]) -> [Int] {
                var new = [Int](repeating: pad, count: rows * newStride)
                for r in 0..<rows { for t in 0..<stride { new[r * newStride + t] = old[r * stride + t] } }
                return new
            }
            running = regrown(running); nextRunning = regrown(nextRunning)
            finishedIDs = regrown(finishedIDs); mergedIDs = regrown(mergedIDs)
            stride = newStride
        }

        while true {
            if Task.isCancelled { throw .cancelled }
            if curLen + 1 > stride { try growSequences() }
            try state.forward(tokens: next)
            // log_softmax, then the processors on log-probs, then add each beam's running score; rows are
            // independent, so they are shared among the threads (each row is a few passes over V floats).
            let logits = state.logits.pointer, beamScores = runningScores, length = curLen, width = stride
            running.withUnsafeBufferPointer { ids in
                normalizers.withUnsafeMutableBufferPointer { normalizers in
                    let parts = Parallel.chunks(rows, cost: rows * v * 8)
                    let per = (rows + parts - 1) / parts
                    Parallel.run(parts) { p in
                        for r in (p * per)..<min(rows, (p + 1) * per) {
                            let row = logits + r * v
                            // log_softmax as x − logsumexp(x), keeping the normalizer to check it below.
                            let lse = Softmax.logSumExp(row, v)
                            normalizers[r] = lse
                            Vector.add(-lse, to: row, v)
                            processors.apply(row, vocabulary: v, history: UnsafeBufferPointer(rebasing: ids[(r * width)..<(r * width + length)]), generated: length - 1)
                            Vector.add(beamScores[r], to: row, v)
                        }
                    }
                }
            }
            // A NaN or +∞ logit would leave fewer than 2·beams comparable candidates below.
            for r in 0..<rows where !normalizers[r].isFinite {
                throw .nonFinite(what: "the logits of decoding step \(curLen), beam \(r % k + 1) of input \(r / k + 1) (the model's activations overflowed)")
            }
            var allCandidatesHit = true
            let denominator = Float(pow(Double(curLen), Double(lp)))  // (cur_len + 1 − decoder_prompt_len) ** length_penalty
            for i in 0..<b {
                topContinuations(state.logits.pointer + i * k * v, beams: k, vocabulary: v, keep: keep, into: &candidates)
                for (index, cand) in candidates.enumerated() {
                    hits[index] = eos.contains(cand.token) || curLen + 1 >= maxLength
                    if !hits[index] { allCandidatesHit = false }
                    // Ended candidates sink by −1e9 when choosing the beams that run on.
                    penalized[index] = cand.score + (hits[index] ? Self.disabled : 0)
                }

                // Next running beams: the k best penalized candidates (the earlier one on ties).
                for index in 0..<keep { taken[index] = false }
                for j in 0..<k {
                    var best = -1
                    for index in 0..<keep where !taken[index] && (best < 0 || penalized[index] > penalized[best]) { best = index }
                    taken[best] = true
                    let cand = candidates[best]
                    let row = i * k + j, source = i * k + cand.beam
                    sources[row] = source
                    for t in 0..<curLen { nextRunning[row * stride + t] = running[source * stride + t] }
                    nextRunning[row * stride + curLen] = cand.token
                    nextScores[row] = penalized[best]
                }

                // Finished hypotheses: the k best of the kept ones and the just-ended top-k candidates.
                let beamsFull = (0..<k).allSatisfy { finishedFlag[i * k + $0] } && options.earlyStopping == .always
                for slot in 0..<k { pool[slot] = finishedScore[i * k + slot] }
                for (index, cand) in candidates.enumerated() {
                    var score = cand.score / denominator
                    if beamsFull { score += Self.disabled }
                    if !heuristicUnsatisfied[i] { score += Self.disabled }
                    if !(hits[index] && index < k) { score += Self.disabled }
                    pool[k + index] = score
                }
                for index in 0..<(k + keep) { taken[index] = false }
                for slot in 0..<k {
                    var best = -1
                    for index in 0..<(k + keep) where !taken[index] && (best < 0 || pool[index] > pool[best]) { best = index }
                    taken[best] = true
                    let dst = i * k + slot
                    mergedScore[dst] = pool[best]
                    if best < k {
                        let src = i * k + best
                        mergedLength[dst] = finishedLength[src]
                        mergedFlag[dst] = finishedFlag[src]
                        for t in 0..<finishedLength[src] { mergedIDs[dst * stride + t] = finishedIDs[src * stride + t] }
                    } else {
                        let cand = candidates[best - k]
                        let source = i * k + cand.beam
                        mergedLength[dst] = curLen + 1
                        mergedFlag[dst] = hits[best - k] && best - k < k
                        for t in 0..<curLen { mergedIDs[dst * stride + t] = running[source * stride + t] }
                        mergedIDs[dst * stride + curLen] = cand.token
                    }
                }
            }
            swap(&running, &nextRunning)
            swap(&runningScores, &nextScores)
            swap(&finishedIDs, &mergedIDs)
            swap(&finishedLength, &mergedLength)
            swap(&finishedScore, &mergedScore)
            swap(&finishedFlag, &mergedFlag)
            try state.reorder(sources)
            curLen += 1

            // _check_early_stop_heuristic: can the best running beam still beat the worst finished one?
            let hypothetical = options.earlyStopping == .never && lp > 0 ? maxLength - 1 : curLen - 1
            let hypotheticalDenominator = Float(pow(Double(hypothetical), Double(lp)))
            for i in 0..<b where heuristicUnsatisfied[i] {
                let best = runningScores[i * k] / hypotheticalDenominator
                var worst = finishedScore[i * k]
                for slot in 1..<max(k, 1) { worst = min(worst, finishedScore[i * k + slot]) }
                heuristicUnsatisfied[i] = (0..<k).contains { best > (finishedFlag[i * k + $0] ? worst : Self.disabled) }
            }
            let improvementPossible = heuristicUnsatisfied.contains(true)
            let allFinished = !finishedFlag.contains(false)
            let openBeam = !(allFinished && options.earlyStopping == .always)
            if !(improvementPossible && openBeam && !allCandidatesHit) { break }
            for r in 0..<rows { next[r] = running[r * stride + curLen - 1] }
        }
        return (0..<b).map { i in
            (0..<min(options.numReturnSequences, k)).map { slot in
                let h = i * k + slot
                // Drop the decoder start token; keep ids up to and including the first eos.
                var ids = Array(finishedIDs[(h * stride + 1)..<(h * stride + finishedLength[h])])
                if let end = ids.firstIndex(where: eos.contains) { ids = Array(ids[...end]) }
                return (ids, finishedScore[h])
            }
        }
    }

    /// torch.topk over the (beams · V) accumulated scores of one input, sorted by descending score
    /// (the lower index first on equal scores).
    ///
    /// Once `keep` candidates are held, a whole vector of scores none of which beats the weakest is skipped
    /// with one comparison: almost every score of a step is far below the top 2·beams.
    private func topContinuations(_ scores: UnsafePointer<Float>, beams: Int, vocabulary v: Int, keep: Int, into out: inout [Candidate]) {
        out.removeAll(keepingCapacity: true)
        var minScore = -Float.infinity
        let n = beams * v, w = Vector.width
        var index = 0
        while index < n {
            if out.count == keep && index % w == 0 && index + w <= n && !Vector.anyGreater(scores + index, than: minScore) {
                index += w
                continue
            }
            defer { index += 1 }
            let s = scores[index]
            if out.count == keep && !(s > minScore) { continue }
            var pos = out.count
            while pos > 0 && out[pos - 1].score < s { pos -= 1 }
            if out.count == keep { out.removeLast() }
            out.insert(Candidate(score: s, beam: index / v, token: index % v), at: min(pos, out.count))
            minScore = out.count == keep ? out[keep - 1].score : -.infinity
        }
    }
}
