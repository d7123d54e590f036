/// Weights of one attention projection set, stored `[out, in]` as in nn.Linear (T5Attention's q, k, v, o).
struct AttentionWeights: Sendable {
    var q: WeightMatrix  // (H·K, D)
    var k: WeightMatrix  // (H·K, D)
    var v: WeightMatrix  // (H·K, D)
    var o: WeightMatrix  // (D, H·K)
}

/// Weights of a feed-forward layer (T5DenseActDense or T5DenseGatedActDense).
enum FeedForwardWeights: Sendable {
    /// `wo · act(wi · h)`
    case plain(wi: WeightMatrix, wo: WeightMatrix)
    /// `wo · (act(wi_0 · h) ⊙ (wi_1 · h))`
    case gated(wi0: WeightMatrix, wi1: WeightMatrix, wo: WeightMatrix)

    /// (F, D) the projection the activation reads: wi, or wi_0 when gated.
    var gate: WeightMatrix {
        switch self {
        case let .plain(wi, _): return wi
        case let .gated(wi0, _, _): return wi0
        }
    }

    /// (F, D) wi_1, the linear half of a gated layer.
    var linear: WeightMatrix? {
        if case let .gated(_, wi1, _) = self { return wi1 }
        return nil
    }

    /// (D, F)
    var wo: WeightMatrix {
        switch self {
        case let .plain(_, wo), let .gated(_, _, wo): return wo
        }
    }

    var projections: [WeightMatrix] { [gate] + (linear.map { [$0] } ?? []) + [wo] }
}

/// A T5 sub-layer: `x + f(RMSNorm(x))` (T5LayerSelfAttention, T5LayerCrossAttention, T5LayerFF), its norm
/// beside its weights. `layer.q` reads the weights' `q`.
@dynamicMemberLookup
struct SubLayer<Weights: Sendable>: Sendable {
    /// (D) the RMSNorm scale of `layer_norm`.
    var norm: Tensor
    var weights: Weights

    subscript<T>(dynamicMember path: KeyPath<Weights, T>) -> T { weights[keyPath: path] }
}

/// One T5Block: self-attention, cross-attention in a decoder, feed-forward.
struct T5Block: Sendable {
    var selfAttention: SubLayer<AttentionWeights>
    /// Decoder blocks only.
    var crossAttention: SubLayer<AttentionWeights>?
    var feedForward: SubLayer<FeedForwardWeights>
    /// (buckets, H) this block's own relative attention bias table: block 0's in T5 (every other block reads
    /// it), every block's in UMT5. See `relativeBiasOwners`.
    var relativeBias: Tensor?

    /// Every projection of the block.
    var projections: [WeightMatrix] {
        var all = [selfAttention.q, selfAttention.k, selfAttention.v, selfAttention.o]
        if let cross = crossAttention { all += [cross.q, cross.k, cross.v, cross.o] }
        return all + feedForward.weights.projections
    }
}

extension [T5Block] {
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
