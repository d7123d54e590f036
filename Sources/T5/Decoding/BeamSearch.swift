import Foundation

/// Beam search exactly as transformers 5 implements it (`GenerationMixin._beam_search`): per input, keep
/// `numBeams` running beams; each step take the top 2·numBeams continuations of all beams; those that end
/// (eos, or the length limit) among the top numBeams become finished hypotheses scored
/// `sum_logprobs / generated_length ** length_penalty`; the best unfinished ones run on.
///
/// Scores are accumulated in Float like transformers' float32 tensors, including the −1e9 sentinels that
/// disable a candidate, so that rankings agree to the last bit wherever they are not ties.
///
/// As a `SearchStrategy`, rows are beams (row i·k + j is beam j of input i). An input leaves the decode loop,
/// all its beams at once, as soon as its finished hypotheses can no longer change: when transformers' early
/// stop heuristic says no running beam can beat them, or (`early_stopping=True`) when all k are finished;
/// transformers runs such an input on with the others, but `_update_finished_beams` adds −1e9 to every new
/// candidate of it (the `heuristicUnsatisfied` and `beamsFull` terms below), so its hypotheses never change
/// again and its result is what it held when it left.
///
/// All bookkeeping lives in flat buffers (sequences are rows of `stride` ids) that double, like the decoder
/// cache, when the sequences outgrow them; any other step allocates nothing.
struct BeamSearch: SearchStrategy {
    private static let disabled: Float = -1.0e9

    private struct Candidate {
        var score: Float
        var beam: Int
        var token: Int
    }

    let rowInputs: [Int]
    private let options: GenerationOptions
    private let processors: LogitsProcessors
    private let eos: [Int]
    private let pad: Int
    private let b: Int, k: Int, rows: Int, keep: Int, maxLength: Int
    private var stride: Int

    // Running beams: row r's ids are running[r·stride ..< r·stride + curLen].
    private var running: [Int], nextRunning: [Int]
    private var runningScores: [Float], nextScores: [Float]
    private var sources: [Int]
    // Finished hypotheses per input: k slots of (ids, length, score, finished), double-buffered for merging.
    private var finishedIDs: [Int], finishedLength: [Int], finishedScore: [Float], finishedFlag: [Bool]
    private var mergedIDs: [Int], mergedLength: [Int], mergedScore: [Float], mergedFlag: [Bool]
    private var heuristicUnsatisfied: [Bool]
    private var results: [[(ids: [Int], score: Float)]]

    private var candidates = [Candidate]()
    private var hits: [Bool], penalized: [Float], taken: [Bool], pool: [Float], normalizers: [Float]
    private var curLen = 1

    /// Positions of the cache and sequence buffers before they first grow.
    static func initialPositions(_ options: GenerationOptions) -> Int {
        min(options.maxNewTokens, DecodeLoop.initialPositions)
    }

    /// Beams for `inputs` encoder rows. Throws `.tooLarge` when the bookkeeping does not fit.
    init(model: T5Model, options: GenerationOptions, inputs b: Int) throws(T5Error) {
        let k = options.numBeams
        eos = model.eosTokenIDs
        pad = model.padTokenID
        let start = model.decoderStartTokenID
        // beams_to_keep = max(2, 1 + number of eos ids) · num_beams
        let (keep, keepOverflow) = k.multipliedReportingOverflow(by: max(2, 1 + eos.count))
        let (rows, rowsOverflow) = b.multipliedReportingOverflow(by: k)
        // Decoder start token + new tokens.
        maxLength = options.maxNewTokens < Int.max ? 1 + options.maxNewTokens : Int.max
        stride = Self.initialPositions(options) + 1
        // Candidates, pools and hypotheses per beam are each a few words: counted at 64 bytes a beam-position.
        try MemoryBudget.require(
            keepOverflow || rowsOverflow ? nil : MemoryBudget.product([rows, stride, 64]),
            for: "beam search over \(b) input\(b == 1 ? "" : "s") with \(k) beams")
        self.b = b
        self.k = k
        self.rows = rows
        self.keep = keep
        self.options = options
        processors = LogitsProcessors(options: options, eosIDs: eos)
        rowInputs = (0..<rows).map { $0 / k }

        running = [Int](repeating: pad, count: rows * stride)
        for r in 0..<rows { running[r * stride] = start }
        nextRunning = running
        runningScores = [Float](repeating: 0, count: rows)
        for i in 0..<b { for j in 1..<k { runningScores[i * k + j] = Self.disabled } }
        nextScores = runningScores
        sources = Array(0..<rows)

        finishedIDs = [Int](repeating: pad, count: b * k * stride)
        finishedLength = [Int](repeating: 0, count: b * k)
        finishedScore = [Float](repeating: Self.disabled, count: b * k)
        finishedFlag = [Bool](repeating: false, count: b * k)
        mergedIDs = finishedIDs; mergedLength = finishedLength; mergedScore = finishedScore; mergedFlag = finishedFlag
        heuristicUnsatisfied = [Bool](repeating: true, count: b)
        results = [[(ids: [Int], score: Float)]](repeating: [], count: b)

        candidates.reserveCapacity(keep)
        hits = [Bool](repeating: false, count: keep)
        penalized = [Float](repeating: 0, count: keep)
        taken = [Bool](repeating: false, count: k + keep)
        pool = [Float](repeating: 0, count: k + keep)
        normalizers = [Float](repeating: 0, count: rows)
    }

    func nextToken(of row: Int) -> Int { running[row * stride + curLen - 1] }

    /// Re-lays every sequence buffer out with twice the stride (at most `maxLength`).
    private mutating func growSequences() throws(T5Error) {
        let newStride = min(maxLength, stride <= Int.max / 2 ? 2 * stride : Int.max)
        try MemoryBudget.require(
            MemoryBudget.product([rows, newStride, 64]),
            for: "beam search sequences of \(newStride) tokens for \(rows) beams")
        let stride = stride, rows = rows, pad = pad
        func regrown(_ old: [Int]) -> [Int] {
            var new = [Int](repeating: pad, count: rows * newStride)
            for r in 0..<rows { for t in 0..<stride { new[r * newStride + t] = old[r * stride + t] } }
            return new
        }
        running = regrown(running); nextRunning = regrown(nextRunning)
        finishedIDs = regrown(finishedIDs); mergedIDs = regrown(mergedIDs)
        self.stride = newStride
    }

    /// One step of `_beam_search` for the live inputs, whose k beams are consecutive in `logits.rows`.
    ///
    /// Throws `.nonFinite` when a step's logits hold a NaN or +∞, and `.tooLarge` when the buffers cannot grow.
    mutating func step(_ logits: LogitRows, events: inout [RowEvent]) throws(T5Error) {
        let v = logits.vocabulary, n = logits.rows.count, lp = options.lengthPenalty
        if curLen + 1 > stride { try growSequences() }
        // log_softmax, then the processors on log-probs, then add each beam's running score; rows are
        // independent, so they are shared among the threads (each row is a few passes over V floats).
        let beamScores = runningScores, length = curLen, width = stride, processors = processors
        running.withUnsafeBufferPointer { ids in
            normalizers.withUnsafeMutableBufferPointer { normalizers in
                Parallel.forEachSlice(n, cost: n * v * 8) { slice in
                    for i in slice {
                        let r = logits.rows[i], row = logits.row(i)
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
        for r in logits.rows where !normalizers[r].isFinite {
            throw .nonFinite(what: "the logits of decoding step \(curLen), beam \(r % k + 1) of input \(r / k + 1) (the model's activations overflowed)")
        }
        var allCandidatesHit = true
        let denominator = Float(pow(Double(curLen), Double(lp)))  // (cur_len + 1 − decoder_prompt_len) ** length_penalty
        for first in Swift.stride(from: 0, to: n, by: k) {
            let i = logits.rows[first] / k
            Self.topContinuations(logits.row(first), beams: k, vocabulary: v, keep: keep, into: &candidates)
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
        // Only the live inputs' rows were written: the others' buffers are stale from here on, and never read.
        swap(&running, &nextRunning)
        swap(&runningScores, &nextScores)
        swap(&finishedIDs, &mergedIDs)
        swap(&finishedLength, &mergedLength)
        swap(&finishedScore, &mergedScore)
        swap(&finishedFlag, &mergedFlag)
        for r in logits.rows where sources[r] != r { events.append(.continues(row: r, source: sources[r])) }
        curLen += 1

        // _check_early_stop_heuristic: can the best running beam still beat the worst finished one?
        let hypothetical = options.earlyStopping == .never && lp > 0 ? maxLength - 1 : curLen - 1
        let hypotheticalDenominator = Float(pow(Double(hypothetical), Double(lp)))
        for first in Swift.stride(from: 0, to: n, by: k) {
            let i = logits.rows[first] / k
            if heuristicUnsatisfied[i] {
                let best = runningScores[i * k] / hypotheticalDenominator
                var worst = finishedScore[i * k]
                for slot in 1..<max(k, 1) { worst = min(worst, finishedScore[i * k + slot]) }
                heuristicUnsatisfied[i] = (0..<k).contains { best > (finishedFlag[i * k + $0] ? worst : Self.disabled) }
            }
            // The input is done when its hypotheses can no longer change (or the whole search stops).
            let full = options.earlyStopping == .always && (0..<k).allSatisfy { finishedFlag[i * k + $0] }
            guard allCandidatesHit || !heuristicUnsatisfied[i] || full else { continue }
            results[i] = hypotheses(of: i)
            for j in 0..<k { events.append(.finished(row: i * k + j)) }
        }
    }

    /// Input i's best `numReturnSequences` hypotheses, best first.
    private func hypotheses(of i: Int) -> [(ids: [Int], score: Float)] {
        (0..<min(options.numReturnSequences, k)).map { slot in
            let h = i * k + slot
            // Drop the decoder start token; keep ids up to and including the first eos.
            var ids = Array(finishedIDs[(h * stride + 1)..<(h * stride + finishedLength[h])])
            if let end = ids.firstIndex(where: eos.contains) { ids = Array(ids[...end]) }
            return (ids, finishedScore[h])
        }
    }

    /// Per input, up to `numReturnSequences` hypotheses, best first.
    func output() -> [[(ids: [Int], score: Float)]] { results }

    /// torch.topk over the (beams · V) accumulated scores of one input, sorted by descending score
    /// (the lower index first on equal scores).
    ///
    /// Once `keep` candidates are held, a whole vector of scores none of which beats the weakest is skipped
    /// with one comparison: almost every score of a step is far below the top 2·beams.
    private static func topContinuations(_ scores: UnsafePointer<Float>, beams: Int, vocabulary v: Int, keep: Int, into out: inout [Candidate]) {
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
