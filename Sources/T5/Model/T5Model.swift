import Foundation

/// A loaded T5 model: configuration, weights and tokenizer. Immutable and `Sendable`: load it once and
/// generate, score or tokenize from many tasks at once; all per-request state lives in the request.
public struct T5Model: Sendable {
    public let config: T5Config
    public let tokenizer: T5Tokenizer
    let weights: T5Weights
    let encoderBias: RelativePositionBias
    let decoderBias: RelativePositionBias
    /// Whether the checkpoint carries its own `lm_head.weight`.
    public let hasSeparateLMHead: Bool

    init(config: T5Config, weights: T5Weights, tokenizer: T5Tokenizer, hasSeparateLMHead: Bool) {
        self.config = config
        self.weights = weights
        self.tokenizer = tokenizer
        self.hasSeparateLMHead = hasSeparateLMHead
        encoderBias = RelativePositionBias(config: config, table: weights.encoderRelativeBias.pointer, bidirectional: true)
        decoderBias = RelativePositionBias(config: config, table: weights.decoderRelativeBias.pointer, bidirectional: false)
    }

    /// Number of parameters (the shared embedding counted once).
    public var parameterCount: Int {
        T5Parameters.specs(for: config, separateLMHead: hasSeparateLMHead).reduce(0) { $0 + $1.shape.reduce(1, *) }
    }

    /// Width of the attention projections, `num_heads · d_kv` (need not equal d_model).
    var innerDim: Int { config.numHeads * config.dKV }
}
