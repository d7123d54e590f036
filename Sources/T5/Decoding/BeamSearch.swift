import Foundation

/// Beam search exactly as transformers 5 implements it (`GenerationMixin._beam_search`): per input, keep
/// `numBeams` running beams; each step take the top 2·numBeams continuations of all beams; those that end
/// (eos, or the length limit) among the top numBeams become finished hypotheses scored
/// `sum_logprobs / generated_length ** length_penalty`; the best unfinished ones run on.
///
/// Scores are accumulated in Float like transformers' float32 tensors, including the −1e9 sentinels that
/// disable a candidate, so that rankings agree to the last bit wherever they are not ties.
struct BeamSearch {
    let model: T5Model
    let options: GenerationOptions

    private static let disabled: Float = -1.0e9

    private struct Candidate {
        var score: Float
        var beam: Int
        var token: Int
    }

    private struct Finished {
        var ids: [Int]
        var score: Float
        var isFinished: Bool
    }

    /// Per input, up to `numReturnSequences` hypotheses, best first.
    func run(encoded: EncoderOutput) -> [[(ids: [Int], score: Float)]] {
        let c = model.config, v = c.vocabSize, b = encoded.batch, k = options.numBeams
        let keep = 2 * k  // beams_to_keep = max(2, 1 + number of eos ids) · num_beams
        let maxLength = 1 + options.maxNewTokens  // decoder start token + new tokens
        let lp = options.lengthPenalty
        let rows = b * k
        let state = DecoderState(model: model, encoded: encoded, rowInput: (0..<rows).map { $0 / k }, capacity: options.maxNewTokens)
        let processors = LogitsProcessors(options: options, eosID: c.eosTokenID)

        var running = [[Int]](repeating: [c.decoderStartTokenID], count: rows)
        var runningScores = [Float](repeating: 0, count: rows)
        for i in 0..<b { for j in 1..<k { runningScores[i * k + j] = Self.disabled } }
        var finished = [[Finished]](repeating: .init(repeating: Finished(ids: [], score: Self.disabled, isFinished: false), count: k), count: b)
        var heuristicUnsatisfied = [Bool](repeating: true, count: b)
        var next = [Int](repeating: c.decoderStartTokenID, count: rows)
        var curLen = 1
        var candidates = [Candidate]()
        candidates.reserveCapacity(keep)

        while true {
            state.forward(tokens: next)
            // log_softmax, then the processors on log-probs, then add each beam's running score.
            for r in 0..<rows {
                let row = state.logits.pointer + r * v
                Softmax.logSoftmax(row, v, into: row)
                processors.apply(row, vocabulary: v, history: running[r], generated: curLen - 1)
                let s = runningScores[r]
                for i in 0..<v { row[i] += s }
            }
            var allCandidatesHit = true
            var sources = [Int](repeating: 0, count: rows)
            var newRunning = running
            var newScores = runningScores
            for i in 0..<b {
                topContinuations(state.logits.pointer + i * k * v, beams: k, vocabulary: v, keep: keep, into: &candidates)
                let hits = candidates.map { $0.token == c.eosTokenID || curLen + 1 >= maxLength }
                if hits.contains(false) { allCandidatesHit = false }

                // Next running beams: the best candidates that did not just end (ended ones sink by −1e9).
                let ranked = candidates.indices
                    .map { (index: $0, score: candidates[$0].score + (hits[$0] ? Self.disabled : 0)) }
                    .sorted { $0.score > $1.score || ($0.score == $1.score && $0.index < $1.index) }
                for j in 0..<k {
                    let cand = candidates[ranked[j].index]
                    let row = i * k + j
                    sources[row] = i * k + cand.beam
                    newRunning[row] = running[i * k + cand.beam] + [cand.token]
                    newScores[row] = ranked[j].score
                }

                // Finished hypotheses: merge the just-ended top-k candidates into the kept ones.
                let beamsFull = finished[i].allSatisfy(\.isFinished) && options.earlyStopping == .always
                let denominator = Float(pow(Double(curLen + 1 - 1), Double(lp)))
                var merged = finished[i]
                for (index, cand) in candidates.enumerated() {
                    var score = cand.score / denominator
                    if beamsFull { score += Self.disabled }
                    if !heuristicUnsatisfied[i] { score += Self.disabled }
                    let justFinished = hits[index] && index < k
                    if !justFinished { score += Self.disabled }
                    merged.append(Finished(
                        ids: running[i * k + cand.beam] + [cand.token], score: score, isFinished: justFinished))
                }
                finished[i] = Array(stableTop(merged, k))
            }
            running = newRunning
            runningScores = newScores
            state.reorder(sources)
            curLen += 1

            // _check_early_stop_heuristic: can the best running beam still beat the worst finished one?
            for i in 0..<b where heuristicUnsatisfied[i] {
                let hypothetical = options.earlyStopping == .never && lp > 0 ? maxLength - 1 : curLen - 1
                let best = runningScores[i * k] / Float(pow(Double(hypothetical), Double(lp)))
                let worst = finished[i].map(\.score).min() ?? Self.disabled
                heuristicUnsatisfied[i] = finished[i].contains { best > ($0.isFinished ? worst : Self.disabled) }
            }
            let improvementPossible = heuristicUnsatisfied.contains(true)
            let allFinished = finished.allSatisfy { $0.allSatisfy(\.isFinished) }
            let openBeam = !(allFinished && options.earlyStopping == .always)
            if !(improvementPossible && openBeam && !allCandidatesHit) { break }
            for r in 0..<rows { next[r] = running[r].last ?? c.padTokenID }
        }
        return finished.map { hyps in
            hyps.prefix(options.numReturnSequences).map { h in
                var ids = Array(h.ids.dropFirst())  // drop the decoder start token
                if let end = ids.firstIndex(of: c.eosTokenID) { ids = Array(ids[...end]) }
                return (ids, h.score)
            }
        }
    }

    /// torch.topk over the (beams · V) accumulated scores of one input, sorted by descending score.
    private func topContinuations(_ scores: UnsafePointer<Float>, beams: Int, vocabulary v: Int, keep: Int, into out: inout [Candidate]) {
        out.removeAll(keepingCapacity: true)
        var minScore = -Float.infinity
        for index in 0..<(beams * v) {
            let s = scores[index]
            if out.count == keep && !(s > minScore) { continue }
            let cand = Candidate(score: s, beam: index / v, token: index % v)
            // Insert keeping descending order; on equal scores the lower index first.
            var pos = out.count
            while pos > 0 && out[pos - 1].score < s { pos -= 1 }
            out.insert(cand, at: pos)
            if out.count > keep { out.removeLast() }
            minScore = out.count == keep ? out[keep - 1].score : -.infinity
        }
    }

    /// The `k` best hypotheses by score, the earlier one first on ties.
    private func stableTop(_ items: [Finished], _ k: Int) -> ArraySlice<Finished> {
        items.enumerated()
            .sorted { $0.element.score > $1.element.score || ($0.element.score == $1.element.score && $0.offset < $1.offset) }
            .map(\.element)
            .prefix(k)
    }
}
