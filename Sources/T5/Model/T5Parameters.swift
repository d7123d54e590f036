/// The parameter table: every tensor of a T5 model, its role in the model, its checkpoint key (as transformers
/// names it, computed from the role) and the shape the configuration implies. This file is the only place a
/// checkpoint key is spelled; everything else (loader, packer, initializer, freezing, student copies) switches
/// on the role.
public struct ParameterSpec: Sendable, Hashable {
    public let role: ParameterRole
    /// `role.key`, computed once: specs are looked up by key on every training step.
    public let key: String
    public let shape: [Int]

    public init(role: ParameterRole, shape: [Int]) {
        self.role = role
        self.key = role.key
        self.shape = shape
    }
}

/// Which stack a block belongs to.
public enum Stack: String, Sendable, Hashable {
    case encoder, decoder
}

/// What a parameter tensor is in the model. The checkpoint key is derived from it (`key`), never the other way
/// round: code that needs to know what a tensor does asks its role.
///
/// In transformers' layout (modeling_t5.py) a block is a list of sub-layers: `layer.0` self-attention,
/// `layer.1` cross-attention (decoder only), then the feed-forward (`layer.1` in the encoder, `layer.2` in
/// the decoder), each with its own `layer_norm`.
public enum ParameterRole: Sendable, Hashable {
    /// The token embedding `shared`, which the stacks read (and a tied LM head multiplies by).
    case embedding
    /// An untied LM head (v1.1, Flan, mT5, UMT5).
    case lmHead
    /// The RMS norm in front of a sub-layer.
    case norm(Stack, block: Int, SubLayer)
    /// A projection of a sub-layer: q, k, v, o of an attention; wi (or the gated wi_0, wi_1) and wo of the
    /// feed-forward.
    case projection(Stack, block: Int, SubLayer, Projection)
    /// A relative position bias table (buckets × heads): block 0's in T5, every block's in UMT5.
    case positionBias(Stack, block: Int)
    /// The RMS norm after a stack's last block.
    case finalNorm(Stack)

    /// The sub-layers of a block.
    public enum SubLayer: Sendable, Hashable {
        case selfAttention, crossAttention, feedForward
    }

    /// A projection's name in its sub-layer: q, k, v, o for attention; wi, wi_0, wi_1, wo for the feed-forward.
    public enum Projection: String, Sendable, Hashable, CaseIterable {
        case q, k, v, o
        case wi
        case wiGate = "wi_0"
        case wiLinear = "wi_1"
        case wo
    }

    /// The stack the tensor belongs to; nil for the embedding and the LM head.
    public var stack: Stack? {
        switch self {
        case .embedding, .lmHead: nil
        case let .norm(stack, _, _), let .projection(stack, _, _, _), let .positionBias(stack, _), let .finalNorm(stack): stack
        }
    }

    /// The block the tensor belongs to; nil for the embedding, the LM head and the final norms.
    public var block: Int? {
        switch self {
        case .embedding, .lmHead, .finalNorm: nil
        case let .norm(_, block, _), let .projection(_, block, _, _), let .positionBias(_, block): block
        }
    }

    /// A matrix that multiplies activations and may be held in bf16 or int8: the sub-layers' projections and an
    /// untied LM head (the embedding is also read row by row, and stays fp32, as do norms and biases).
    public var isProjection: Bool {
        switch self {
        case .projection, .lmHead: true
        case .embedding, .norm, .positionBias, .finalNorm: false
        }
    }

    /// The same tensor in block `block` of its stack (a student block copying a teacher block); roles outside
    /// the blocks are returned unchanged.
    public func moved(toBlock block: Int) -> ParameterRole {
        switch self {
        case .embedding, .lmHead, .finalNorm: self
        case let .norm(stack, _, sub): .norm(stack, block: block, sub)
        case let .projection(stack, _, sub, p): .projection(stack, block: block, sub, p)
        case let .positionBias(stack, _): .positionBias(stack, block: block)
        }
    }

    /// The checkpoint key transformers gives this tensor.
    public var key: String {
        switch self {
        case .embedding:
            return "shared.weight"
        case .lmHead:
            return "lm_head.weight"
        case let .finalNorm(stack):
            return "\(stack.rawValue).final_layer_norm.weight"
        case let .norm(stack, block, sub):
            return "\(Self.subLayerPath(stack, block, sub)).layer_norm.weight"
        case let .projection(stack, block, sub, projection):
            let module = switch sub {
            case .selfAttention: "SelfAttention"
            case .crossAttention: "EncDecAttention"
            case .feedForward: "DenseReluDense"
            }
            return "\(Self.subLayerPath(stack, block, sub)).\(module).\(projection.rawValue).weight"
        case let .positionBias(stack, block):
            return "\(Self.subLayerPath(stack, block, .selfAttention)).SelfAttention.relative_attention_bias.weight"
        }
    }

    /// "encoder.block.3.layer.1": the sub-layer's index is its position in the block's `layer` list.
    private static func subLayerPath(_ stack: Stack, _ block: Int, _ sub: SubLayer) -> String {
        let index = switch sub {
        case .selfAttention: 0
        case .crossAttention: 1
        case .feedForward: stack == .encoder ? 1 : 2
        }
        return "\(stack.rawValue).block.\(block).layer.\(index)"
    }
}

public enum T5Parameters {
    /// Keys a checkpoint may hold beyond the table: the per-stack embedding aliases older files save next to
    /// `shared.weight`, and the cross-attention bias original T5 checkpoints carry and transformers drops
    /// (`_keys_to_ignore_on_load_unexpected` in modeling_t5.py). Those of the decoder only with a decoder.
    static func tolerated(decoder: Bool) -> Set<String> {
        var keys = Set(embeddingAliases(decoder: decoder))
        if decoder { keys.insert("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight") }
        return keys
    }

    /// Per-stack copies of `shared.weight` in older files; transformers ties them to `shared`.
    static func embeddingAliases(decoder: Bool) -> [String] {
        (decoder ? [Stack.encoder, .decoder] : [.encoder]).map { "\($0.rawValue).embed_tokens.weight" }
    }

    /// The key of the per-row scales stored next to an int8 projection by `t5 convert --weights int8`.
    static func int8Scales(of key: String) -> String { key + "_scale" }

    /// The block index of a key under `stack`'s blocks ("encoder.block.7.…" → 7), nil for other keys.
    static func blockIndex(of key: String, in stack: Stack) -> Int? {
        let prefix = "\(stack.rawValue).block."
        guard key.hasPrefix(prefix) else { return nil }
        return Int(key.dropFirst(prefix.count).prefix { $0 != "." })
    }

    /// `key` (a key under `stack`'s blocks) moved to block `block`: "decoder.block.5.layer.0…" → "decoder.block.1.layer.0…".
    static func renumbered(_ key: String, in stack: Stack, to block: Int) -> String {
        let prefix = "\(stack.rawValue).block."
        precondition(key.hasPrefix(prefix), "\(key) is not a key of the \(stack.rawValue)'s blocks")
        return prefix + "\(block)" + key.dropFirst(prefix.count).drop { $0 != "." }
    }

    /// Whether `key` is a relative position bias table (for tests that move keys between blocks).
    static func isRelativeBias(_ key: String) -> Bool {
        key.hasSuffix(".SelfAttention.relative_attention_bias.weight")
    }

    /// Every tensor the configuration needs, in table order. `separateLMHead` is true when the checkpoint
    /// carries its own `lm_head.weight` (v1.1, Flan, mT5); otherwise the shared embedding is the LM head.
    /// Without `decoder` (an encoder-only checkpoint: `T5EncoderModel`), `shared.weight` and `encoder.*` only.
    public static func specs(for c: T5Config, separateLMHead: Bool, decoder: Bool = true) -> [ParameterSpec] {
        let inner = c.numHeads * c.dKV
        var specs = [ParameterSpec(role: .embedding, shape: [c.vocabSize, c.dModel])]
        for stack in decoder ? [Stack.encoder, .decoder] : [.encoder] {
            let blocks = stack == .encoder ? c.numLayers : c.numDecoderLayers
            for b in 0..<blocks {
                let attentions: [ParameterRole.SubLayer] = stack == .decoder ? [.selfAttention, .crossAttention] : [.selfAttention]
                for sub in attentions {
                    specs.append(.init(role: .norm(stack, block: b, sub), shape: [c.dModel]))
                    for p in [ParameterRole.Projection.q, .k, .v] {
                        specs.append(.init(role: .projection(stack, block: b, sub, p), shape: [inner, c.dModel]))
                    }
                    specs.append(.init(role: .projection(stack, block: b, sub, .o), shape: [c.dModel, inner]))
                    if (b == 0 || c.variant.hasPerBlockRelativeBias) && sub == .selfAttention {
                        specs.append(.init(role: .positionBias(stack, block: b), shape: [c.relativeAttentionNumBuckets, c.numHeads]))
                    }
                }
                specs.append(.init(role: .norm(stack, block: b, .feedForward), shape: [c.dModel]))
                for p in feedForwardInputs(c) {
                    specs.append(.init(role: .projection(stack, block: b, .feedForward, p), shape: [c.dFF, c.dModel]))
                }
                specs.append(.init(role: .projection(stack, block: b, .feedForward, .wo), shape: [c.dModel, c.dFF]))
            }
            specs.append(.init(role: .finalNorm(stack), shape: [c.dModel]))
        }
        if separateLMHead && decoder { specs.append(.init(role: .lmHead, shape: [c.vocabSize, c.dModel])) }
        return specs
    }

    /// The feed-forward's input projections: wi_0 (the gate) and wi_1 when gated, wi otherwise.
    static func feedForwardInputs(_ c: T5Config) -> [ParameterRole.Projection] {
        c.isGatedActivation ? [.wiGate, .wiLinear] : [.wi]
    }
}
