/// The parameter table: every tensor of a T5 model, its checkpoint key (as transformers names it) and the
/// shape the configuration implies. This file is the only place a checkpoint key is spelled.
public struct ParameterSpec: Sendable, Hashable {
    public let key: String
    public let shape: [Int]
}

/// Which stack a block belongs to.
public enum Stack: String, Sendable {
    case encoder, decoder
}

public enum T5Parameters {
    static let shared = "shared.weight"
    static let lmHead = "lm_head.weight"

    /// Keys a checkpoint may hold beyond the table: the per-stack embedding aliases older files save next to
    /// `shared.weight`, and the cross-attention bias original T5 checkpoints carry and transformers drops
    /// (`_keys_to_ignore_on_load_unexpected` in modeling_t5.py).
    static let tolerated: Set<String> = Set(embeddingAliases + ["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"])

    /// Per-stack copies of `shared.weight` in older files; transformers ties them to `shared`.
    static let embeddingAliases = ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"]

    static func finalNorm(_ stack: Stack) -> String { "\(stack.rawValue).final_layer_norm.weight" }

    /// Sub-layer index inside a block: self-attention is 0, cross-attention 1 (decoder only), feed-forward last.
    static func feedForwardLayer(_ stack: Stack) -> Int { stack == .encoder ? 1 : 2 }

    static func layerNorm(_ stack: Stack, block: Int, layer: Int) -> String {
        "\(stack.rawValue).block.\(block).layer.\(layer).layer_norm.weight"
    }

    /// `name` is q, k, v, o or relative_attention_bias.
    static func attention(_ stack: Stack, block: Int, cross: Bool, _ name: String) -> String {
        let layer = cross ? "1.EncDecAttention" : "0.SelfAttention"
        return "\(stack.rawValue).block.\(block).layer.\(layer).\(name).weight"
    }

    /// `name` is wi, wi_0, wi_1 or wo.
    static func feedForward(_ stack: Stack, block: Int, _ name: String) -> String {
        "\(stack.rawValue).block.\(block).layer.\(feedForwardLayer(stack)).DenseReluDense.\(name).weight"
    }

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

    /// Whether `key` is a relative position bias table.
    static func isRelativeBias(_ key: String) -> Bool {
        key.hasSuffix(".SelfAttention.relative_attention_bias.weight")
    }

    /// Every tensor the configuration needs. `separateLMHead` is true when the checkpoint carries its own
    /// `lm_head.weight` (v1.1, Flan, mT5); otherwise the shared embedding is the LM head. Without
    /// `decoder` (an encoder-only checkpoint: `T5EncoderModel`), `shared.weight` and `encoder.*` only.
    public static func specs(for c: T5Config, separateLMHead: Bool, decoder: Bool = true) -> [ParameterSpec] {
        let inner = c.numHeads * c.dKV
        var specs = [ParameterSpec(key: shared, shape: [c.vocabSize, c.dModel])]
        for stack in decoder ? [Stack.encoder, .decoder] : [.encoder] {
            let blocks = stack == .encoder ? c.numLayers : c.numDecoderLayers
            for b in 0..<blocks {
                for cross in stack == .decoder ? [false, true] : [false] {
                    specs.append(.init(key: layerNorm(stack, block: b, layer: cross ? 1 : 0), shape: [c.dModel]))
                    for name in ["q", "k", "v"] {
                        specs.append(.init(key: attention(stack, block: b, cross: cross, name), shape: [inner, c.dModel]))
                    }
                    specs.append(.init(key: attention(stack, block: b, cross: cross, "o"), shape: [c.dModel, inner]))
                    if (b == 0 || c.variant.hasPerBlockRelativeBias) && !cross {
                        specs.append(.init(
                            key: attention(stack, block: b, cross: false, "relative_attention_bias"),
                            shape: [c.relativeAttentionNumBuckets, c.numHeads]))
                    }
                }
                specs.append(.init(key: layerNorm(stack, block: b, layer: feedForwardLayer(stack)), shape: [c.dModel]))
                let inputs = c.isGatedActivation ? ["wi_0", "wi_1"] : ["wi"]
                for name in inputs {
                    specs.append(.init(key: feedForward(stack, block: b, name), shape: [c.dFF, c.dModel]))
                }
                specs.append(.init(key: feedForward(stack, block: b, "wo"), shape: [c.dModel, c.dFF]))
            }
            specs.append(.init(key: finalNorm(stack), shape: [c.dModel]))
        }
        if separateLMHead && decoder { specs.append(.init(key: lmHead, shape: [c.vocabSize, c.dModel])) }
        return specs
    }
}
