import Foundation

/// A loaded T5 model: configuration, weights and tokenizer. Immutable and `Sendable`: load it once and
/// generate, score or tokenize from many tasks at once; all per-request state lives in the request.
public struct T5Model: Sendable {
    public let config: T5Config
    public let tokenizer: any Tokenizer
    let weights: T5Weights
    let encoder: T5Stack
    /// Nil for an encoder-only checkpoint.
    let decoder: T5Stack?
    /// Nil for an encoder-only checkpoint.
    let head: LMHead?
    /// Whether the checkpoint carries its own `lm_head.weight`.
    public let hasSeparateLMHead: Bool
    /// The checkpoint's `generation_config.json`, when it has one.
    public let generationConfig: GenerationConfig?

    /// The decoder start token of generation: generation_config.json's, else config.json's (transformers'
    /// `generate()` reads the generation config, which `from_pretrained` fills from the file).
    public var decoderStartTokenID: Int { generationConfig?.decoderStartTokenID ?? config.decoderStartTokenID }
    /// Every id that ends a generated sequence: generation_config.json's, else config.json's.
    public var eosTokenIDs: [Int] { generationConfig?.eosTokenIDs ?? config.eosTokenIDs }
    /// The id fed to a finished row while others decode on.
    public var padTokenID: Int { generationConfig?.padTokenID ?? config.padTokenID }

    init(config: T5Config, weights: T5Weights, tokenizer: any Tokenizer, hasSeparateLMHead: Bool, generationConfig: GenerationConfig? = nil) {
        self.config = config
        self.generationConfig = generationConfig
        self.weights = weights
        self.tokenizer = tokenizer
        self.hasSeparateLMHead = hasSeparateLMHead
        encoder = weights.encoder(config: config)
        let hasDecoder = weights.decoderFinalNorm != nil
        decoder = hasDecoder ? weights.decoder(config: config) : nil
        head = hasDecoder ? weights.head(config: config) : nil
    }

    /// Number of parameters (the shared embedding counted once).
    public var parameterCount: Int {
        T5Parameters.specs(for: config, separateLMHead: hasSeparateLMHead, decoder: hasDecoder).reduce(0) { $0 + $1.shape.reduce(1, *) }
    }

    /// False for an encoder-only checkpoint (`T5EncoderModel`, ...): it embeds, and cannot generate or score.
    public var hasDecoder: Bool { weights.decoderFinalNorm != nil }

    /// The class transformers would load this checkpoint as.
    public var architecture: String { hasDecoder ? config.variant.architecture : config.variant.encoderArchitecture }

    /// Throws `.noDecoder` for an encoder-only model; called before anything decodes.
    func requireDecoder() throws(T5Error) {
        if !hasDecoder { throw .noDecoder(architecture: architecture) }
    }

    /// The relative position bias each encoder block adds to its scores (one shared value in T5).
    var encoderBiases: [RelativePositionBias] { encoder.biases }
    /// The same for the decoder's blocks.
    var decoderBiases: [RelativePositionBias] { decoder?.biases ?? [] }
    /// The longest input the encoder's relative bias covers (see `RelativePositionBias.supportedLength`).
    var encoderSupportedLength: Int { encoder.supportedLength }
    /// The most decoder positions the decoder's relative bias covers.
    var decoderSupportedLength: Int { decoder?.supportedLength ?? Int.max }

    /// Width of the attention projections, `num_heads · d_kv` (need not equal d_model).
    var innerDim: Int { config.numHeads * config.dKV }
}
