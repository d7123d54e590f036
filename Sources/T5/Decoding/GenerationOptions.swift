/// When beam search stops, as transformers' `early_stopping` decides it.
public enum EarlyStopping: String, Sendable, Codable {
    /// `early_stopping=False` (the default): stop when the best running beam, at its current length, can no
    /// longer beat the worst finished hypothesis.
    case heuristic = "false"
    /// `early_stopping=True`: stop as soon as `num_beams` hypotheses are finished.
    case always = "true"
    /// `early_stopping="never"`: stop only when no running beam can improve, assuming (for a positive length
    /// penalty) it could grow to the maximum length: canonical beam search.
    case never
}

/// Everything that steers `generate`. Defaults are transformers' `GenerationConfig` defaults: with neither
/// `max_length` nor `max_new_tokens` set, `generate()` makes 20 new tokens (`_prepare_generated_length`:
/// "by default let's always generate 20 new tokens").
public struct GenerationOptions: Sendable, Equatable {
    public var maxNewTokens = 20
    public var minNewTokens = 0
    public var numBeams = 1
    public var numReturnSequences = 1
    public var lengthPenalty: Float = 1
    public var earlyStopping = EarlyStopping.heuristic
    /// Sample instead of taking the argmax (multinomial sampling, `do_sample=True`).
    public var sample = false
    public var temperature: Float = 1
    /// 0 disables top-k filtering; transformers' default is 50.
    public var topK = 50
    public var topP: Float = 1
    public var seed: UInt64 = 0
    public var repetitionPenalty: Float = 1
    public var noRepeatNgramSize = 0
    /// Inputs longer than this many tokens (with `</s>`) are refused; nil = no limit.
    public var maxInputTokens: Int?
    /// Inputs longer than this many tokens are cut to their first `n - 1` and `</s>` (before
    /// `maxInputTokens` is checked); nil = no cut.
    public var truncateInputsTo: Int?

    /// transformers' defaults.
    public init() {}

    /// The defaults of `model`'s checkpoint: its generation_config.json over transformers' defaults, as
    /// `generate()` with no arguments uses them.
    public init(for model: T5Model) {
        self = model.generationConfig?.options(over: GenerationOptions()) ?? GenerationOptions()
    }

    /// Checks every value's range; the CLI calls this too, so both report the same words.
    public func validate() throws(T5Error) {
        func fail(_ name: String, _ reason: String) -> T5Error { .invalidOption(name: name, reason: reason) }
        if maxNewTokens < 1 { throw fail("GenerationOptions.maxNewTokens", "must be at least 1, got \(maxNewTokens)") }
        if minNewTokens < 0 { throw fail("GenerationOptions.minNewTokens", "must be 0 or more, got \(minNewTokens)") }
        if minNewTokens > maxNewTokens { throw fail("GenerationOptions.minNewTokens", "\(minNewTokens) exceeds GenerationOptions.maxNewTokens \(maxNewTokens)") }
        if numBeams < 1 { throw fail("GenerationOptions.numBeams", "must be at least 1, got \(numBeams)") }
        if numReturnSequences < 1 { throw fail("GenerationOptions.numReturnSequences", "must be at least 1, got \(numReturnSequences)") }
        if numBeams > 1 && numReturnSequences > numBeams {
            throw fail("GenerationOptions.numReturnSequences", "\(numReturnSequences) exceeds GenerationOptions.numBeams \(numBeams)")
        }
        if numBeams == 1 && !sample && numReturnSequences > 1 {
            throw fail("GenerationOptions.numReturnSequences", "greedy search returns one sequence; use GenerationOptions.numBeams or GenerationOptions.sample")
        }
        if sample && numBeams > 1 { throw fail("GenerationOptions.sample", "cannot be combined with GenerationOptions.numBeams > 1") }
        if !lengthPenalty.isFinite { throw fail("GenerationOptions.lengthPenalty", "must be a finite number") }
        if !(temperature > 0) || !temperature.isFinite { throw fail("GenerationOptions.temperature", "must be a positive number, got \(temperature)") }
        if topK < 0 { throw fail("GenerationOptions.topK", "must be 0 (off) or more, got \(topK)") }
        if !(topP > 0 && topP <= 1) { throw fail("GenerationOptions.topP", "must be in (0, 1], got \(topP)") }
        if !(repetitionPenalty > 0) || !repetitionPenalty.isFinite { throw fail("GenerationOptions.repetitionPenalty", "must be a positive number, got \(repetitionPenalty)") }
        if noRepeatNgramSize < 0 { throw fail("GenerationOptions.noRepeatNgramSize", "must be 0 (off) or more, got \(noRepeatNgramSize)") }
        if let m = maxInputTokens, m < 1 { throw fail("GenerationOptions.maxInputTokens", "must be at least 1, got \(m)") }
        if let n = truncateInputsTo, n < 2 { throw fail("GenerationOptions.truncateInputsTo", "must be at least 2 (a token and </s>), got \(n)") }
    }
}

/// One generated sequence.
public struct GeneratedSequence: Sendable, Equatable, Codable {
    /// Generated ids without the decoder start token, ending with eos (1) when one was generated.
    public var ids: [Int]
    /// Decoded text (special tokens skipped).
    public var text: String
    /// Beam search: transformers' `sequences_scores` (sum of log-probs / length^length_penalty).
    /// Greedy and sampling: the sum of the log-probs of the chosen tokens under the processed distribution,
    /// as `compute_transition_scores(..., normalize_logits=True)` gives them.
    public var score: Float
    /// Greedy and sampling: those log-probs one per generated token (`score` is their sum); nil for beam
    /// search, whose hypotheses' per-step scores transformers reports through `beam_indices`.
    public var tokenScores: [Float]?

    enum CodingKeys: String, CodingKey {
        case ids, text, score
        case tokenScores = "token_logprobs"
    }

    public init(ids: [Int], text: String, score: Float, tokenScores: [Float]? = nil) {
        self.ids = ids
        self.text = text
        self.score = score
        self.tokenScores = tokenScores
    }
}
