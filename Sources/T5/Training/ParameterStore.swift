/// The trainable copy of a model's weights, with a gradient buffer for every parameter that is not frozen.
///
/// One per training run, used from one task at a time: optimizers update `values` in place and
/// `accumulateGradients` adds into `gradients`. Tied embeddings (no `lm_head.weight` in the checkpoint) are
/// the single tensor `shared.weight`, whose gradient collects the encoder and decoder embeddings and the LM head.
public final class ParameterStore {
    public let config: T5Config
    /// The parameter table of the model (`T5Parameters.specs(for:separateLMHead:)`), in table order.
    public let specs: [ParameterSpec]
    /// Whether the model has its own `lm_head.weight` (v1.1, Flan, mT5) instead of the tied `shared.weight`.
    public let hasSeparateLMHead: Bool
    /// Owned fp32 copies of every parameter, by checkpoint key (never views of a memory-mapped file).
    public private(set) var values: [String: Tensor]
    /// The keys that are not frozen.
    public let trainable: Set<String>
    /// Gradient buffers, shaped as `values`, for the trainable keys only: a frozen tensor gets no buffer.
    public private(set) var gradients: [String: Tensor]
    /// The activations and temporaries of a training step, kept for the next step.
    let workspace = Workspace()

    /// Copies the weights of `model`. Every key in `frozen` must be one of `specs`.
    public init(model: T5Model, frozen: Set<String> = []) {
        config = model.config
        hasSeparateLMHead = model.hasSeparateLMHead
        specs = T5Parameters.specs(for: model.config, separateLMHead: model.hasSeparateLMHead)
        let keys = Set(specs.map(\.key))
        let unknown = frozen.subtracting(keys)
        precondition(unknown.isEmpty, "frozen keys that are not parameters of this model: \(unknown.sorted())")
        let source = model.weights.byKey(config: model.config, separateLMHead: model.hasSeparateLMHead)
        var values = [String: Tensor]()
        var gradients = [String: Tensor]()
        for spec in specs {
            guard let tensor = source[spec.key] else { preconditionFailure("the model has no tensor \(spec.key)") }
            precondition(tensor.shape == spec.shape, "\(spec.key): shape \(tensor.shape), table says \(spec.shape)")
            values[spec.key] = tensor.copy()
            if !frozen.contains(spec.key) { gradients[spec.key] = Tensor(zeros: spec.shape) }
        }
        self.values = values
        self.gradients = gradients
        trainable = keys.subtracting(frozen)
    }

    /// Sets every gradient to zero (start of an optimizer step's accumulation). The gradients, taken one
    /// after the other as one range, are split across the threads (240 MB for t5-small: one thread does not
    /// reach the memory bandwidth).
    public func zeroGradients() {
        let tensors = Array(gradients.values)
        let total = tensors.reduce(0) { $0 + $1.count }
        Parallel.forEachSlice(total, cost: total) { slice in
            // The part of `slice` in each tensor, which starts at `offset` in the concatenation.
            var offset = 0
            for g in tensors {
                let lo = max(slice.lowerBound, offset), hi = min(slice.upperBound, offset + g.count)
                if lo < hi { (g.pointer + (lo - offset)).update(repeating: 0, count: hi - lo) }
                offset += g.count
                if offset >= slice.upperBound { break }
            }
        }
    }

    /// An inference model over the current `values` (no copy of the weight matrices), for evaluation and
    /// generation. The relative position biases are expanded when the model is made: make a new model after
    /// the weights change.
    public func makeModel(tokenizer: any Tokenizer) -> T5Model {
        T5Model(config: config, weights: weights, tokenizer: tokenizer, hasSeparateLMHead: hasSeparateLMHead)
    }

    /// The current values in the layout the model code reads.
    var weights: T5Weights {
        T5Weights(config: config, separateLMHead: hasSeparateLMHead) { key in
            // `values` holds every key of `specs`, which is every key T5Weights asks for.
            values[key] ?? Tensor(zeros: [0])
        }
    }

    /// The gradients in the same layout as `weights`: `gradientWeights.selfAttention.q` is the gradient of
    /// `weights.selfAttention.q`. Frozen keys map to an empty tensor (see `gradientPointer`). When tied,
    /// `lmHead` is `shared`, so the LM head's gradient lands in the embedding's buffer.
    var gradientWeights: T5Weights {
        let none = Tensor(zeros: [0])
        return T5Weights(config: config, separateLMHead: hasSeparateLMHead) { key in gradients[key] ?? none }
    }
}

/// The gradient buffer behind a `gradientWeights` entry, or nil for a frozen parameter.
@inline(__always)
func gradientPointer(_ t: Tensor) -> UnsafeMutablePointer<Float>? {
    t.count == 0 ? nil : t.pointer
}

/// The gradient buffer behind a projection of `gradientWeights`, or nil for a frozen parameter.
@inline(__always)
func gradientPointer(_ m: WeightMatrix) -> UnsafeMutablePointer<Float>? {
    gradientPointer(m.tensor)
}

extension T5Weights {
    /// Every tensor by its checkpoint key: the inverse of `init(config:separateLMHead:tensor:)`.
    /// (fp32 weights only; a tied LM head is the `shared.weight` entry.)
    func byKey(config c: T5Config, separateLMHead: Bool) -> [String: Tensor] {
        var out = tensorsByKey
        for (key, matrix) in matricesByKey where key != ParameterRole.embedding.key {
            out[key] = matrix.tensor
        }
        return out
    }
}
