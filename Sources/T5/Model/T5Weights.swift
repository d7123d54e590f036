/// Weights of one attention sub-layer: projections stored `[out, in]` as in nn.Linear.
struct AttentionWeights: Sendable {
    var q: WeightMatrix  // (H·K, D)
    var k: WeightMatrix  // (H·K, D)
    var v: WeightMatrix  // (H·K, D)
    var o: WeightMatrix  // (D, H·K)
}

/// Weights of one feed-forward sub-layer: `wi` for a plain activation, `wi_0`/`wi_1` for a gated one.
struct FeedForwardWeights: Sendable {
    var wi: WeightMatrix   // (F, D): wi, or wi_0 (the gate) when gated
    var wiLinear: WeightMatrix?  // (F, D): wi_1 when gated
    var wo: WeightMatrix   // (D, F)
}

struct BlockWeights: Sendable {
    var selfAttentionNorm: Tensor  // (D)
    var selfAttention: AttentionWeights
    /// (buckets, H) this block's own relative attention bias: block 0's in T5, every block's in UMT5.
    var relativeBias: Tensor?
    var crossAttentionNorm: Tensor?  // (D), decoder only
    var crossAttention: AttentionWeights?
    var feedForwardNorm: Tensor  // (D)
    var feedForward: FeedForwardWeights
}

/// All weights of a T5 model, resolved from the parameter table.
struct T5Weights: Sendable {
    var shared: Tensor  // (V, D)
    var lmHead: WeightMatrix  // (V, D): lm_head.weight, or `shared` when tied
    var encoderBlocks: [BlockWeights]
    var encoderFinalNorm: Tensor
    /// Empty, and the final norm nil, for an encoder-only checkpoint.
    var decoderBlocks: [BlockWeights]
    var decoderFinalNorm: Tensor?
    /// Every fp32 tensor and every projection by checkpoint key (the tied LM head is under `shared.weight`
    /// in `matrices`), for writing the model back out.
    /// The decoder's final norm, where a decoder runs: training and `DecoderState` check `hasDecoder` (the
    /// model refuses with `.noDecoder`) before anything reads it.
    var decoderNorm: Tensor {
        guard let norm = decoderFinalNorm else { preconditionFailure("an encoder-only model has no decoder") }
        return norm
    }
    private(set) var tensorsByKey = [String: Tensor]()
    private(set) var matricesByKey = [String: WeightMatrix]()

    /// Builds fp32 weights from `tensor(key)` (a trainer's parameter store, for instance).
    init(config c: T5Config, separateLMHead: Bool, tensor: (String) -> Tensor) {
        self.init(config: c, separateLMHead: separateLMHead, decoder: true, tensor: tensor, matrix: { WeightMatrix(tensor($0)) })
    }

    /// Builds the weights from `tensor(key)` for fp32 tensors (embedding, norms, position biases) and
    /// `matrix(key)` for the projections, which the loader backs with the checkpoint in the precision asked
    /// for. Every key requested here comes from `T5Parameters`.
    init(
        config c: T5Config, separateLMHead: Bool, decoder: Bool,
        tensor fetchTensor: (String) -> Tensor, matrix fetchMatrix: (String) -> WeightMatrix
    ) {
        var tensors = [String: Tensor](), matrices = [String: WeightMatrix]()
        func tensor(_ role: ParameterRole) -> Tensor {
            let t = fetchTensor(role.key)
            tensors[role.key] = t
            return t
        }
        func matrix(_ role: ParameterRole) -> WeightMatrix {
            let m = fetchMatrix(role.key)
            matrices[role.key] = m
            return m
        }
        func attention(_ stack: Stack, _ b: Int, _ sub: ParameterRole.SubLayer) -> AttentionWeights {
            AttentionWeights(
                q: matrix(.projection(stack, block: b, sub, .q)),
                k: matrix(.projection(stack, block: b, sub, .k)),
                v: matrix(.projection(stack, block: b, sub, .v)),
                o: matrix(.projection(stack, block: b, sub, .o)))
        }
        func feedForward(_ stack: Stack, _ b: Int) -> FeedForwardWeights {
            let inputs = T5Parameters.feedForwardInputs(c)
            return FeedForwardWeights(
                wi: matrix(.projection(stack, block: b, .feedForward, inputs[0])),
                wiLinear: inputs.count > 1 ? matrix(.projection(stack, block: b, .feedForward, inputs[1])) : nil,
                wo: matrix(.projection(stack, block: b, .feedForward, .wo)))
        }
        func blocks(_ stack: Stack, _ count: Int) -> [BlockWeights] {
            (0..<count).map { b in
                let decoder = stack == .decoder
                return BlockWeights(
                    selfAttentionNorm: tensor(.norm(stack, block: b, .selfAttention)),
                    selfAttention: attention(stack, b, .selfAttention),
                    relativeBias: b == 0 || c.variant.hasPerBlockRelativeBias ? tensor(.positionBias(stack, block: b)) : nil,
                    crossAttentionNorm: decoder ? tensor(.norm(stack, block: b, .crossAttention)) : nil,
                    crossAttention: decoder ? attention(stack, b, .crossAttention) : nil,
                    feedForwardNorm: tensor(.norm(stack, block: b, .feedForward)),
                    feedForward: feedForward(stack, b))
            }
        }
        shared = tensor(.embedding)
        lmHead = matrix(separateLMHead && decoder ? .lmHead : .embedding)
        encoderBlocks = blocks(.encoder, c.numLayers)
        encoderFinalNorm = tensor(.finalNorm(.encoder))
        decoderBlocks = decoder ? blocks(.decoder, c.numDecoderLayers) : []
        decoderFinalNorm = decoder ? tensor(.finalNorm(.decoder)) : nil
        tensorsByKey = tensors
        matricesByKey = matrices
    }
}

extension [BlockWeights] {
    /// For each block, the index of the block whose relative bias table it reads: its own when it has one,
    /// else the nearest one before it (block 0 in T5, where "every block reuses the bias of block 0").
    var relativeBiasOwners: [Int] {
        var owner = 0
        return indices.map { b in
            if self[b].relativeBias != nil { owner = b }
            return owner
        }
    }
}
