/// Weights of one attention sub-layer: projections stored `[out, in]` as in nn.Linear.
struct AttentionWeights: Sendable {
    var q: Tensor  // (H·K, D)
    var k: Tensor  // (H·K, D)
    var v: Tensor  // (H·K, D)
    var o: Tensor  // (D, H·K)
}

/// Weights of one feed-forward sub-layer: `wi` for a plain activation, `wi_0`/`wi_1` for a gated one.
struct FeedForwardWeights: Sendable {
    var wi: Tensor   // (F, D): wi, or wi_0 (the gate) when gated
    var wiLinear: Tensor?  // (F, D): wi_1 when gated
    var wo: Tensor   // (D, F)
}

struct BlockWeights: Sendable {
    var selfAttentionNorm: Tensor  // (D)
    var selfAttention: AttentionWeights
    var crossAttentionNorm: Tensor?  // (D), decoder only
    var crossAttention: AttentionWeights?
    var feedForwardNorm: Tensor  // (D)
    var feedForward: FeedForwardWeights
}

/// All weights of a T5 model, resolved from the parameter table.
struct T5Weights: Sendable {
    var shared: Tensor  // (V, D)
    var lmHead: Tensor  // (V, D): lm_head.weight, or `shared` when tied
    var encoderBlocks: [BlockWeights]
    var encoderFinalNorm: Tensor
    var encoderRelativeBias: Tensor  // (buckets, H)
    var decoderBlocks: [BlockWeights]
    var decoderFinalNorm: Tensor
    var decoderRelativeBias: Tensor  // (buckets, H)

    /// Builds the weights from `tensor(key)`, which the loader backs with the checkpoint (or a trainer with
    /// its parameter store). Every key requested here comes from `T5Parameters`.
    init(config c: T5Config, separateLMHead: Bool, tensor: (String) -> Tensor) {
        func attention(_ stack: Stack, _ b: Int, cross: Bool) -> AttentionWeights {
            AttentionWeights(
                q: tensor(T5Parameters.attention(stack, block: b, cross: cross, "q")),
                k: tensor(T5Parameters.attention(stack, block: b, cross: cross, "k")),
                v: tensor(T5Parameters.attention(stack, block: b, cross: cross, "v")),
                o: tensor(T5Parameters.attention(stack, block: b, cross: cross, "o")))
        }
        func feedForward(_ stack: Stack, _ b: Int) -> FeedForwardWeights {
            FeedForwardWeights(
                wi: tensor(T5Parameters.feedForward(stack, block: b, c.isGatedActivation ? "wi_0" : "wi")),
                wiLinear: c.isGatedActivation ? tensor(T5Parameters.feedForward(stack, block: b, "wi_1")) : nil,
                wo: tensor(T5Parameters.feedForward(stack, block: b, "wo")))
        }
        func blocks(_ stack: Stack, _ count: Int) -> [BlockWeights] {
            (0..<count).map { b in
                let decoder = stack == .decoder
                return BlockWeights(
                    selfAttentionNorm: tensor(T5Parameters.layerNorm(stack, block: b, layer: 0)),
                    selfAttention: attention(stack, b, cross: false),
                    crossAttentionNorm: decoder ? tensor(T5Parameters.layerNorm(stack, block: b, layer: 1)) : nil,
                    crossAttention: decoder ? attention(stack, b, cross: true) : nil,
                    feedForwardNorm: tensor(T5Parameters.layerNorm(stack, block: b, layer: T5Parameters.feedForwardLayer(stack))),
                    feedForward: feedForward(stack, b))
            }
        }
        shared = tensor(T5Parameters.shared)
        lmHead = separateLMHead ? tensor(T5Parameters.lmHead) : shared
        encoderBlocks = blocks(.encoder, c.numLayers)
        encoderFinalNorm = tensor(T5Parameters.finalNorm(.encoder))
        encoderRelativeBias = tensor(T5Parameters.attention(.encoder, block: 0, cross: false, "relative_attention_bias"))
        decoderBlocks = blocks(.decoder, c.numDecoderLayers)
        decoderFinalNorm = tensor(T5Parameters.finalNorm(.decoder))
        decoderRelativeBias = tensor(T5Parameters.attention(.decoder, block: 0, cross: false, "relative_attention_bias"))
    }
}
