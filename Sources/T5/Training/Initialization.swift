import Foundation

extension T5Model {
    /// A model with freshly initialized weights, for training from scratch: the distributions of
    /// transformers' `T5PreTrainedModel._init_weights` (modeling_t5.py) with `initializer_factor` 1:
    /// embeddings (and an untied LM head) N(0, 1); q N(0, (d_model·d_kv)^-½); k, v N(0, d_model^-½);
    /// o N(0, (heads·d_kv)^-½); relative position bias N(0, d_model^-½); wi, wi_0, wi_1 N(0, d_model^-½);
    /// wo N(0, d_ff^-½); layer norms 1. The values come from `seed` (not torch's generator).
    ///
    /// `separateLMHead` gives the model its own `lm_head.weight` (v1.1 style); otherwise the head is tied.
    /// Throws `.tooLarge` when the configuration's weights would not fit in memory.
    public static func randomlyInitialized(config: T5Config, tokenizer: any Tokenizer, separateLMHead: Bool = false, seed: UInt64) throws(T5Error) -> T5Model {
        let c = config
        try MemoryBudget.require(
            c.parameterCount(separateLMHead: separateLMHead).flatMap { MemoryBudget.floats($0) },
            for: "a model of this configuration")
        var generator = RandomStream.initialization.generator(seed: seed)
        var tensors = [String: Tensor]()
        for spec in T5Parameters.specs(for: c, separateLMHead: separateLMHead) {
            let t = Tensor(zeros: spec.shape)
            if let std = standardDeviation(of: spec.role, config: c) {
                fillNormal(t, std: std, generator: &generator)
            } else {
                t.buffer.update(repeating: 1)
            }
            tensors[spec.key] = t
        }
        let weights = T5Weights(config: c, separateLMHead: separateLMHead) { key in
            // Every key the weights ask for was created above from the same table.
            tensors[key] ?? Tensor(zeros: [0])
        }
        return T5Model(config: c, weights: weights, tokenizer: tokenizer, hasSeparateLMHead: separateLMHead)
    }

    /// The standard deviation of a weight's initialization, or nil for a layer norm (all ones).
    private static func standardDeviation(of role: ParameterRole, config c: T5Config) -> Float? {
        let dModel = Float(c.dModel)
        switch role {
        case .norm, .finalNorm: return nil
        case .embedding, .lmHead: return 1
        case .projection(_, _, _, .q): return 1 / (dModel * Float(c.dKV)).squareRoot()
        case .projection(_, _, _, .o): return 1 / Float(c.numHeads * c.dKV).squareRoot()
        case .projection(_, _, _, .wo): return 1 / Float(c.dFF).squareRoot()
        case .projection(_, _, _, .k), .projection(_, _, _, .v), .projection(_, _, _, .wi),
             .projection(_, _, _, .wiGate), .projection(_, _, _, .wiLinear), .positionBias:
            return 1 / dModel.squareRoot()
        }
    }

    /// Fills `t` with N(0, std²) draws (Box–Muller on 53-bit uniforms).
    private static func fillNormal(_ t: Tensor, std: Float, generator: inout SeededGenerator) {
        let p = t.pointer
        var i = 0
        while i < t.count {
            let u1 = max(generator.uniformUnit(), 0x1p-53), u2 = generator.uniformUnit()
            let radius = (-2 * log(u1)).squareRoot()
            p[i] = Float(radius * cos(2 * .pi * u2)) * std
            if i + 1 < t.count { p[i + 1] = Float(radius * sin(2 * .pi * u2)) * std }
            i += 2
        }
    }
}
