import Foundation

/// T5's unsupervised objective, span corruption (Raffel et al. 2020, §3.1.4): a chunk of raw tokens loses
/// random spans, each replaced in the input by one sentinel; the target lists each sentinel followed by the
/// span it replaced, then `</s>`.
///
/// Matched line by line against two references:
/// - transformers `examples/flax/language-modeling/run_t5_mlm_flax.py` (commit 00661e38 and later):
///   `compute_input_and_target_lengths`, `FlaxDataCollatorForT5MLM.random_spans_noise_mask`,
///   `.create_sentinel_ids` (the current form, `len(tokenizer) - sentinel_ids`) and `.filter_input_ids`;
/// - google-research/text-to-text-transfer-transformer `t5/data/preprocessors.py` (commit e081111c):
///   `random_spans_helper` (line 2646) and `random_spans_noise_mask` (line 2930).
///
/// Rounding is Python's and NumPy's (`round`, `np.round`: half to even, in float64), as both references
/// compute it; TensorFlow's `tf.round` also rounds half to even.
public struct SpanCorruption: Sendable, Equatable {
    /// Fraction of each chunk's tokens that become noise (`noise_density`, `mlm_probability`).
    public let noiseDensity: Double
    /// Mean length of a noise span (`mean_noise_span_length`).
    public let meanSpanLength: Double
    /// Length of every corrupted input, `</s>` included.
    public let inputLength: Int
    /// Raw tokens per chunk (`expanded_inputs_length`, T5's `tokens_length`).
    public let rawLength: Int
    /// Length of every target, `</s>` included.
    public let targetLength: Int
    /// Noise tokens and noise spans of every chunk (the chunk length is fixed, so these are too).
    public let noiseTokens: Int
    public let noiseSpans: Int

    /// T5's `random_spans_helper(inputs_length, ...)`, of which transformers'
    /// `compute_input_and_target_lengths` is a copy: the raw chunk length whose corrupted input is at most
    /// `inputLength` tokens, and the target length. The search starts at `inputs_length − 1` as in T5;
    /// transformers starts at `inputs_length`, which gives the same lengths whenever its collator accepts them
    /// and a chunk one token too long otherwise (mean span 1: every input would be `inputs_length + 1`, and
    /// run_t5_mlm_flax.py stops with "incorrectly preprocessed"). Tests/Fixtures/pretrain records both.
    public static func inputAndTargetLengths(inputLength: Int, noiseDensity: Double, meanSpanLength: Double) -> (tokens: Int, targets: Int) {
        func lengths(_ tokensLength: Int) -> (inputs: Int, targets: Int) {
            let noise = Int((Double(tokensLength) * noiseDensity).rounded(.toNearestOrEven))
            let nonNoise = tokensLength - noise
            let spans = Int((Double(noise) / meanSpanLength).rounded(.toNearestOrEven))
            // Inputs: the non-noise tokens, a sentinel per noise span, </s>; targets the other way round.
            return (nonNoise + spans + 1, noise + spans + 1)
        }
        var tokensLength = inputLength - 1
        while lengths(tokensLength + 1).inputs <= inputLength { tokensLength += 1 }
        var targets = lengths(tokensLength).targets
        // The references' "minor hack": at density 0.5 keep targets no longer than inputs.
        if noiseDensity == 0.5 && targets > lengths(tokensLength).inputs {
            tokensLength -= 1
            targets -= 1
        }
        return (tokensLength, targets)
    }

    /// The noise tokens and spans `random_spans_noise_mask` uses for a chunk of `length` tokens, with its
    /// clamps: at least one noise and one non-noise token, at least one span.
    public static func noiseCounts(length: Int, noiseDensity: Double, meanSpanLength: Double) -> (tokens: Int, spans: Int) {
        var noise = Int((Double(length) * noiseDensity).rounded(.toNearestOrEven))
        noise = min(max(noise, 1), length - 1)
        let spans = max(Int((Double(noise) / meanSpanLength).rounded(.toNearestOrEven)), 1)
        return (noise, spans)
    }

    /// Checks the settings against each other and the tokenizer: throws `.invalidOption` naming
    /// `SpanCorruption.noiseDensity`, `.meanSpanLength`, `.inputLength` or `Tokenizer.sentinelCount`.
    public init(inputLength: Int, noiseDensity: Double = 0.15, meanSpanLength: Double = 3, sentinelCount: Int) throws(T5Error) {
        guard noiseDensity > 0 && noiseDensity < 1 else {
            throw .invalidOption(name: "SpanCorruption.noiseDensity", reason: "must be in (0, 1), got \(noiseDensity)")
        }
        guard meanSpanLength >= 1 && meanSpanLength.isFinite else {
            throw .invalidOption(name: "SpanCorruption.meanSpanLength", reason: "must be at least 1, got \(meanSpanLength)")
        }
        // A noise span needs its sentinel and a non-noise token before it, plus </s>.
        guard inputLength >= 3 else {
            throw .invalidOption(name: "SpanCorruption.inputLength", reason: "must be at least 3 (a token, a sentinel and </s>), got \(inputLength)")
        }
        let (raw, targets) = Self.inputAndTargetLengths(inputLength: inputLength, noiseDensity: noiseDensity, meanSpanLength: meanSpanLength)
        let (noise, spans) = Self.noiseCounts(length: raw, noiseDensity: noiseDensity, meanSpanLength: meanSpanLength)
        // `_random_segmentation(num_items, num_segments)` needs num_segments <= num_items for both the noise
        // and the non-noise tokens (the references fail on a shape mismatch otherwise), and the clamps of
        // random_spans_noise_mask must give the lengths compute_input_and_target_lengths promised
        // (run_t5_mlm_flax.py raises "incorrectly preprocessed" otherwise): both only fail at small lengths.
        let actualInputs = raw - noise + spans + 1, actualTargets = noise + spans + 1
        guard spans <= noise, spans <= raw - noise, actualInputs == inputLength, actualTargets == targets else {
            throw .invalidOption(name: "SpanCorruption.inputLength", reason: "\(inputLength) is too small for noise density \(noiseDensity) and mean span length \(meanSpanLength): chunks of \(raw) tokens give \(noise) noise tokens in \(spans) span(s), inputs of \(actualInputs) tokens instead of \(inputLength)")
        }
        guard spans <= sentinelCount else {
            throw .invalidOption(name: "Tokenizer.sentinelCount", reason: "each example needs \(spans) sentinels (\(noise) noise tokens in spans of \(meanSpanLength)), the tokenizer has \(sentinelCount)")
        }
        self.noiseDensity = noiseDensity
        self.meanSpanLength = meanSpanLength
        self.inputLength = inputLength
        rawLength = raw
        targetLength = targets
        noiseTokens = noise
        noiseSpans = spans
    }

    /// `random_spans_noise_mask(length)` for `rawLength` tokens: `noiseSpans` noise and as many non-noise
    /// spans, each a uniformly random segmentation of its tokens, interleaved starting with non-noise.
    /// `_random_segmentation` shuffles `num_items − 1` flags of which `num_segments − 1` are set, a segment
    /// starting after each set flag: a uniform choice of the cut points, drawn here by Fisher–Yates.
    public func noiseMask(generator: inout SeededGenerator) -> [Bool] {
        let noiseLengths = Self.randomSegmentation(items: noiseTokens, segments: noiseSpans, generator: &generator)
        let nonNoiseLengths = Self.randomSegmentation(items: rawLength - noiseTokens, segments: noiseSpans, generator: &generator)
        var mask = [Bool]()
        mask.reserveCapacity(rawLength)
        for (keep, drop) in zip(nonNoiseLengths, noiseLengths) {
            mask.append(contentsOf: repeatElement(false, count: keep))
            mask.append(contentsOf: repeatElement(true, count: drop))
        }
        return mask
    }

    /// Lengths of `segments` non-empty segments adding up to `items`, all segmentations equally likely.
    static func randomSegmentation(items: Int, segments: Int, generator: inout SeededGenerator) -> [Int] {
        var firstInSegment = [Bool](repeating: false, count: max(items - 1, 0))
        for i in 0..<(segments - 1) { firstInSegment[i] = true }
        if firstInSegment.count > 1 {
            for i in stride(from: firstInSegment.count - 1, to: 0, by: -1) {
                firstInSegment.swapAt(i, generator.uniformIndex(below: i + 1))
            }
        }
        var lengths = [Int]()
        lengths.reserveCapacity(segments)
        var current = 1
        for starts in firstInSegment {
            if starts {
                lengths.append(current)
                current = 1
            } else {
                current += 1
            }
        }
        lengths.append(current)
        return lengths
    }

    /// `create_sentinel_ids(mask)`: at the first token of each run of `true`, the id of the next sentinel
    /// (`<extra_id_0>` first: `len(tokenizer) − 1 − n`, asked of the tokenizer); −1 on the run's other
    /// tokens; 0 elsewhere.
    public static func sentinelIDs(mask: [Bool], sentinelID: (Int) -> Int) -> [Int] {
        var ids = [Int](repeating: 0, count: mask.count)
        var spans = 0
        for i in mask.indices where mask[i] {
            if i == 0 || !mask[i - 1] {
                ids[i] = sentinelID(spans)
                spans += 1
            } else {
                ids[i] = -1
            }
        }
        return ids
    }

    /// `filter_input_ids(ids, sentinel_ids)`: each sentinel in place of its token, the −1 tokens dropped
    /// (the reference keeps `input_ids_full > 0`, which also drops id 0, `<pad>`, from the source), then
    /// `</s>`.
    public static func filterInputIDs(_ ids: [Int], sentinels: [Int], eosID: Int) -> [Int] {
        var result = [Int]()
        result.reserveCapacity(ids.count + 1)
        for (id, sentinel) in zip(ids, sentinels) {
            let full = sentinel != 0 ? sentinel : id
            if full > 0 { result.append(full) }
        }
        result.append(eosID)
        return result
    }

    /// The corrupted example of one chunk of `rawLength` ids: the input masks the noise spans, the target
    /// the non-noise ones (`labels_mask = ~mask_indices` in the reference).
    public static func corrupt(_ chunk: [Int], mask: [Bool], tokenizer: any Tokenizer) -> TokenizedExample {
        precondition(chunk.count == mask.count, "a chunk of \(chunk.count) ids with a mask of \(mask.count)")
        let sentinel = { (n: Int) in tokenizer.sentinelID(n) }
        let input = Self.filterInputIDs(chunk, sentinels: Self.sentinelIDs(mask: mask, sentinelID: sentinel), eosID: tokenizer.eosID)
        let target = Self.filterInputIDs(chunk, sentinels: Self.sentinelIDs(mask: mask.map { !$0 }, sentinelID: sentinel), eosID: tokenizer.eosID)
        return TokenizedExample(inputIDs: input, targetIDs: target)
    }

    /// The corrupted example of chunk number `index` of a run seeded with `seed`: its noise mask comes from
    /// the span-corruption stream at that index, so any chunk can be corrupted again alone (`--resume`,
    /// `--print-examples`).
    public func corrupt(_ chunk: [Int], index: Int, seed: UInt64, validation: Bool = false, tokenizer: any Tokenizer) -> TokenizedExample {
        var generator = RandomStream.spanCorruption.generator(seed: seed, index, validation ? 1 : 0)
        return Self.corrupt(chunk, mask: noiseMask(generator: &generator), tokenizer: tokenizer)
    }

    /// `ids` for reading (`--print-examples`): sentinels and `</s>` by name, each run of other ids decoded
    /// (`decode(run, skip_special_tokens=True)`), the parts separated by spaces.
    public static func visibleText(_ ids: [Int], tokenizer: any Tokenizer) -> String {
        var parts = [String](), run = [Int]()
        let sentinels = (tokenizer.size - tokenizer.sentinelCount)..<tokenizer.size
        func flush() {
            if !run.isEmpty { parts.append(tokenizer.decode(run)) }
            run.removeAll()
        }
        for id in ids {
            if sentinels.contains(id) || id == tokenizer.eosID {
                flush()
                parts.append(tokenizer.piece(for: id) ?? "")
            } else {
                run.append(id)
            }
        }
        flush()
        return parts.joined(separator: " ")
    }
}
