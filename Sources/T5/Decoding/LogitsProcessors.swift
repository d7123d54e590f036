/// The logits processors of transformers' `_get_logits_processor`, applied in its order to one row:
/// repetition penalty → no-repeat-ngram → min-new-tokens, then for sampling temperature → top-k → top-p.
///
/// Greedy and sampling apply them to raw logits; beam search applies them to log-probs, as transformers does.
struct LogitsProcessors {
    let options: GenerationOptions
    /// Every end-of-sequence id: MinNewTokensLengthLogitsProcessor bans them all.
    let eosIDs: [Int]

    /// Processes `scores` (V) of a row whose decoder sequence so far is `history` (starting with the decoder
    /// start token) after `generated` new tokens.
    func apply<History: RandomAccessCollection<Int>>(
        _ scores: UnsafeMutablePointer<Float>, vocabulary v: Int, history: History, generated: Int
    ) where History.Index == Int {
        if options.repetitionPenalty != 1 {
            // RepetitionPenaltyLogitsProcessor: every token of the decoder input (the start token included)
            // is penalized once: negative scores multiplied, positive ones divided. (A quadratic scan for
            // earlier occurrences instead of a set: histories are short and a step must not allocate.)
            let p = options.repetitionPenalty
            for i in history.indices where history[i] < v && !history[history.startIndex..<i].contains(history[i]) {
                let s = scores[history[i]]
                scores[history[i]] = s < 0 ? s * p : s / p
            }
        }
        let n = options.noRepeatNgramSize
        let count = history.count
        if n > 0 && count >= n {
            // NoRepeatNGramLogitsProcessor: ban every token that would complete an n-gram already present
            // (the start token counts as part of the history).
            let first = history.startIndex
            let prefix = history[(history.endIndex - (n - 1))..<history.endIndex]
            for start in first...(first + count - n) where history[start..<(start + n - 1)].elementsEqual(prefix) {
                let banned = history[start + n - 1]
                if banned < v { scores[banned] = -.infinity }
            }
        }
        if generated < options.minNewTokens {
            // MinNewTokensLengthLogitsProcessor.
            for eos in eosIDs where eos < v { scores[eos] = -.infinity }
        }
    }
}
