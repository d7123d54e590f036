/// All weights of a T5 model, resolved from the parameter table.
struct T5Weights: Sendable {
    var shared: Tensor  // (V, D)
    var lmHead: WeightMatrix  // (V, D): lm_head.weight, or `shared` when tied
    var encoderBlocks: [T5Block]
    var encoderFinalNorm: Tensor
    /// Empty, and the final norm nil, for an encoder-only checkpoint.
    var decoderBlocks: [T5Block]
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
            if c.isGatedActivation {
                return .gated(
                    wi0: matrix(.projection(stack, block: b, .feedForward, .wiGate)),
                    wi1: matrix(.projection(stack, block: b, .feedForward, .wiLinear)),
                    wo: matrix(.projection(stack, block: b, .feedForward, .wo)))
            }
            return .plain(
                wi: matrix(.projection(stack, block: b, .feedForward, .wi)),
                wo: matrix(.projection(stack, block: b, .feedForward, .wo)))
        }
        func blocks(_ stack: Stack, _ count: Int) -> [T5Block] {
            (0..<count).map { b in
                let decoder = stack == .decoder
                // Tensors are requested in the checkpoint's order within a block (layer.0, layer.1, layer.2).
                let selfAttention = SubLayer(
                    norm: tensor(.norm(stack, block: b, .selfAttention)), weights: attention(stack, b, .selfAttention))
                let relativeBias = b == 0 || c.variant.hasPerBlockRelativeBias ? tensor(.positionBias(stack, block: b)) : nil
                let crossAttention = decoder
                    ? SubLayer(norm: tensor(.norm(stack, block: b, .crossAttention)), weights: attention(stack, b, .crossAttention))
                    : nil
                let feedForward = SubLayer(norm: tensor(.norm(stack, block: b, .feedForward)), weights: feedForward(stack, b))
                return T5Block(selfAttention: selfAttention, crossAttention: crossAttention, feedForward: feedForward, relativeBias: relativeBias)
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

extension T5Weights {
    /// The encoder stack over these weights.
    func encoder(config: T5Config) -> T5Stack {
        T5Stack(config: config, embedding: shared, blocks: encoderBlocks, finalNorm: encoderFinalNorm, isDecoder: false)
    }

    /// The decoder stack over these weights (callers check `hasDecoder` first).
    func decoder(config: T5Config) -> T5Stack {
        T5Stack(config: config, embedding: shared, blocks: decoderBlocks, finalNorm: decoderNorm, isDecoder: true)
    }

    /// The LM head over these weights.
    func head(config: T5Config) -> LMHead { LMHead(weight: lmHead, config: config) }
}
