/// What a `T5Stack.forward` records when asked (training): every activation its backward reads, under the
/// names the backward uses (Training/Backward.swift walks them in reverse).

/// What the backward of one attention sub-layer (T5LayerSelfAttention or T5LayerCrossAttention) needs.
struct AttentionActivations {
    /// (N, D) the residual stream entering the sub-layer.
    let input: Tensor
    /// (N, D) RMSNorm(input).
    let normed: Tensor
    /// (N, H·K)
    let q: Tensor
    /// (N, H·K) for self-attention; (Ns, H·K), projections of the encoder output, for cross-attention.
    let k: Tensor
    let v: Tensor
    /// Attention probabilities before dropout: sequence b, head h at `offsets[b] + h·Tq_b·L_b`, (Tq_b, L_b).
    let probabilities: Tensor
    /// Dropout mask on the probabilities, laid out as `probabilities`; nil without dropout.
    let probabilityMask: Tensor?
    let offsets: [Int]
    /// (N, H·K) attention output before the `o` projection.
    let context: Tensor
    /// (N, D) dropout mask on the sub-layer output; nil without dropout.
    let outputMask: Tensor?
}

/// What the backward of one feed-forward sub-layer (T5LayerFF) needs.
struct FeedForwardActivations {
    /// (N, D) the residual stream entering the sub-layer.
    let input: Tensor
    /// (N, D) RMSNorm(input).
    let normed: Tensor
    /// (N, F) wi·h (or wi_0·h), the activation's input.
    let gate: Tensor
    /// (N, F) wi_1·h when gated.
    let linear: Tensor?
    /// (N, F) act(gate) (⊙ linear), after dropout: the input of wo.
    let hidden: Tensor
    /// (N, F) dropout mask on `hidden`; nil without dropout.
    let hiddenMask: Tensor?
    /// (N, D) dropout mask on the sub-layer output; nil without dropout.
    let outputMask: Tensor?
}

struct BlockActivations {
    let selfAttention: AttentionActivations
    let crossAttention: AttentionActivations?
    let feedForward: FeedForwardActivations
}

/// One stack's recorded activations.
struct StackActivations {
    /// (N) token ids.
    let ids: [Int32]
    let rows: RowBatch
    /// (N, D) dropout mask on the embeddings; nil without dropout.
    let embeddingMask: Tensor?
    let blocks: [BlockActivations]
    /// (N, D) the residual stream entering the final layer norm.
    let finalInput: Tensor
    /// (N, D) dropout mask after the final layer norm; nil without dropout.
    let finalMask: Tensor?
    /// (N, D) the stack's output: dropout(final_layer_norm(x)).
    let output: Tensor
}
