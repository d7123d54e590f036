import Foundation

/// The generation defaults a checkpoint ships in `generation_config.json` (transformers' `GenerationConfig`):
/// what `generate()` with no arguments does for that checkpoint.
///
/// Every field is nil when the file does not set it (or sets it to null). `options` turns them into
/// `GenerationOptions` in transformers' precedence: a value set here replaces transformers' default, and the
/// caller's explicit choices replace both.
public struct GenerationConfig: Sendable, Equatable {
    public var decoderStartTokenID: Int?
    /// `eos_token_id`: an int or a list; generation stops at any of them.
    public var eosTokenIDs: [Int]?
    public var padTokenID: Int?
    public var maxNewTokens: Int?
    /// `max_length` counts the decoder start token, so it allows `max_length − 1` new tokens.
    public var maxLength: Int?
    public var minNewTokens: Int?
    /// `min_length` counts the decoder start token, as `max_length` does.
    public var minLength: Int?
    public var numBeams: Int?
    public var numReturnSequences: Int?
    public var lengthPenalty: Float?
    public var earlyStopping: EarlyStopping?
    public var doSample: Bool?
    public var temperature: Float?
    public var topK: Int?
    public var topP: Float?
    public var repetitionPenalty: Float?
    public var noRepeatNgramSize: Int?
    /// Keys set to a value that changes transformers' output but that this runtime does not implement, in
    /// alphabetical order. Callers warn about them (the CLI prints one line naming them).
    public var unsupported: [String] = []

    public init() {}

    /// Reads `generation_config.json`; nil when the file does not exist.
    public static func load(from url: URL) throws(T5Error) -> GenerationConfig? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        return try GenerationConfig(json: data, path: url.path)
    }

    /// Parses generation_config.json bytes; `path` names the file in errors. Wrong types are errors, as in
    /// config.json; keys this runtime does not know and that do not change the output are ignored.
    public init(json data: Data, path: String) throws(T5Error) {
        guard String(data: data, encoding: .utf8) != nil else {
            throw .invalidConfig(path: path, reason: "not valid UTF-8")
        }
        let root: JSONValue
        do {
            root = try JSONParser.parse(data, allowNonFinite: true)
        } catch {
            throw .invalidConfig(path: path, reason: "malformed JSON: \(error.description)")
        }
        guard case .object(let object) = root else {
            throw .invalidConfig(path: path, reason: "the top level is \(root.typeName), not an object")
        }
        let r = ConfigReader(object: object, path: path)
        decoderStartTokenID = try r.optionalInt("decoder_start_token_id")
        eosTokenIDs = try r.intOrIntList("eos_token_id")
        padTokenID = try r.optionalInt("pad_token_id")
        maxNewTokens = try r.optionalInt("max_new_tokens")
        maxLength = try r.optionalInt("max_length")
        minNewTokens = try r.optionalInt("min_new_tokens")
        minLength = try r.optionalInt("min_length")
        numBeams = try r.optionalInt("num_beams")
        numReturnSequences = try r.optionalInt("num_return_sequences")
        lengthPenalty = try r.optionalFloat("length_penalty")
        doSample = try r.optionalBool("do_sample", nullMeans: nil)
        temperature = try r.optionalFloat("temperature")
        topK = try r.optionalInt("top_k")
        topP = try r.optionalFloat("top_p")
        repetitionPenalty = try r.optionalFloat("repetition_penalty")
        noRepeatNgramSize = try r.optionalInt("no_repeat_ngram_size")
        switch object["early_stopping"] {
        case nil, .null?: earlyStopping = nil
        case .bool(let b)?: earlyStopping = b ? .always : .heuristic
        case .string("never")?: earlyStopping = .never
        case let other?:
            throw r.invalid("early_stopping", "expected true, false or \"never\", found \(other.typeName)")
        }
        unsupported = object.members.compactMap { member in
            guard let neutral = Self.unimplemented[member.key] else { return nil }
            return neutral.contains(member.value) ? nil : member.key
        }.sorted()
        try validate(path: path)
    }

    /// transformers' `GenerationConfig` keys that change what is generated and that this runtime does not
    /// implement, each with the values that leave generation unchanged (its defaults).
    static let unimplemented: [String: [JSONValue]] = [
        "bad_words_ids": [.null], "force_words_ids": [.null], "constraints": [.null], "sequence_bias": [.null],
        "forced_bos_token_id": [.null], "forced_eos_token_id": [.null],
        "suppress_tokens": [.null], "begin_suppress_tokens": [.null],
        "num_beam_groups": [.integer(1)], "diversity_penalty": [.integer(0), .number(0)],
        "typical_p": [.integer(1), .number(1)], "epsilon_cutoff": [.integer(0), .number(0)],
        "eta_cutoff": [.integer(0), .number(0)], "min_p": [.null], "top_h": [.null],
        "encoder_no_repeat_ngram_size": [.integer(0)], "encoder_repetition_penalty": [.integer(1), .number(1)],
        "renormalize_logits": [.bool(false)], "remove_invalid_values": [.bool(false)],
        "exponential_decay_length_penalty": [.null], "penalty_alpha": [.null],
        "guidance_scale": [.null, .integer(1), .number(1)], "max_time": [.null], "stop_strings": [.null],
        "prompt_lookup_num_tokens": [.null], "assistant_early_exit": [.null], "watermarking_config": [.null],
        "dola_layers": [.null], "token_healing": [.bool(false)],
    ]

    /// The ranges `GenerationOptions.validate` checks, reported against this file's keys.
    func validate(path: String) throws(T5Error) {
        let counts: [(String, Int?, Int)] = [
            ("max_new_tokens", maxNewTokens, 1), ("max_length", maxLength, 2), ("min_new_tokens", minNewTokens, 0),
            ("min_length", minLength, 0), ("num_beams", numBeams, 1), ("num_return_sequences", numReturnSequences, 1),
            ("top_k", topK, 0), ("no_repeat_ngram_size", noRepeatNgramSize, 0),
        ]
        for (key, value, least) in counts {
            if let value, value < least {
                throw .invalidConfig(path: path, reason: "\(key) must be at least \(least), found \(value)")
            }
        }
        do {
            try options(over: GenerationOptions()).validate()
        } catch {
            throw .invalidConfig(path: path, reason: "\(error)")
        }
    }

    /// Checks every token id against the vocabulary, as config.json's are.
    func validate(vocabSize: Int, path: String) throws(T5Error) {
        let ids = [("decoder_start_token_id", decoderStartTokenID), ("pad_token_id", padTokenID)]
            + (eosTokenIDs ?? []).map { ("eos_token_id", Optional($0)) }
        for (key, id) in ids {
            if let id, id < 0 || id >= vocabSize {
                throw .invalidConfig(path: path, reason: "\(key) \(id) is outside the vocabulary 0..<\(vocabSize)")
            }
        }
    }

    /// `base` with every value this file sets. `max_new_tokens` wins over `max_length` as in transformers
    /// (`generation_config.max_length = max_new_tokens + input length`, where an encoder-decoder's decoder
    /// input is the one start token); `min_length` adds its own constraint to `min_new_tokens` (both
    /// processors run, so the larger wins).
    public func options(over base: GenerationOptions) -> GenerationOptions {
        var o = base
        if let maxNewTokens {
            o.maxNewTokens = maxNewTokens
        } else if let maxLength {
            o.maxNewTokens = max(1, maxLength - 1)
        }
        if let minNewTokens { o.minNewTokens = minNewTokens }
        if let minLength { o.minNewTokens = max(o.minNewTokens, minLength - 1) }
        if let numBeams { o.numBeams = numBeams }
        if let numReturnSequences { o.numReturnSequences = numReturnSequences }
        if let lengthPenalty { o.lengthPenalty = lengthPenalty }
        if let earlyStopping { o.earlyStopping = earlyStopping }
        if let doSample { o.sample = doSample }
        if let temperature { o.temperature = temperature }
        if let topK { o.topK = topK }
        if let topP { o.topP = topP }
        if let repetitionPenalty { o.repetitionPenalty = repetitionPenalty }
        if let noRepeatNgramSize { o.noRepeatNgramSize = noRepeatNgramSize }
        return o
    }

    /// The option names this file sets, for reports such as `t5 info`.
    public var setKeys: [String] {
        let all: [(String, Bool)] = [
            ("decoder_start_token_id", decoderStartTokenID != nil), ("eos_token_id", eosTokenIDs != nil),
            ("pad_token_id", padTokenID != nil), ("max_new_tokens", maxNewTokens != nil), ("max_length", maxLength != nil),
            ("min_new_tokens", minNewTokens != nil), ("min_length", minLength != nil), ("num_beams", numBeams != nil),
            ("num_return_sequences", numReturnSequences != nil), ("length_penalty", lengthPenalty != nil),
            ("early_stopping", earlyStopping != nil), ("do_sample", doSample != nil), ("temperature", temperature != nil),
            ("top_k", topK != nil), ("top_p", topP != nil), ("repetition_penalty", repetitionPenalty != nil),
            ("no_repeat_ngram_size", noRepeatNgramSize != nil),
        ]
        return all.filter(\.1).map(\.0)
    }
}
