/// The language-model head of T5ForConditionalGeneration: logits = (h · scale) · Wᵀ.
///
/// Original T5 ties the head to the embedding and rescales the decoder output by d_model^-0.5 first
/// (modeling_t5.py, T5ForConditionalGeneration.forward: `sequence_output * (self.model_dim**-0.5)`);
/// v1.1 / mT5 / UMT5 have their own `lm_head.weight` and no rescale (`tie_word_embeddings` false).
struct LMHead: Sendable {
    /// (V, D) `lm_head.weight`, or `shared.weight` when tied.
    let weight: WeightMatrix
    /// d_model^-0.5 when the model rescales, else nil.
    let scale: Float?

    init(weight: WeightMatrix, config: T5Config) {
        self.weight = weight
        scale = config.rescalesDecoderOutput ? Float(1 / Double(config.dModel).squareRoot()) : nil
    }

    /// `hidden` (rows, D) scaled in place when the model rescales, then logits (rows, V) = hidden · Wᵀ.
    func forward(_ hidden: UnsafeMutablePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>) {
        if let scale { Vector.scale(hidden, by: scale, rows * weight.cols) }
        GEMM.linear(hidden, rows: rows, weight: weight, into: logits)
    }

    /// Backward of `forward`, from dLogits (rows, V) and the head's (scaled) input: dWeight += dLogitsᵀ · input
    /// (skipped when nil: frozen), and the gradient of the unscaled hidden states (rows, D) into `dHidden`.
    func backward(
        _ dLogits: UnsafePointer<Float>, rows: Int, input: UnsafePointer<Float>,
        dWeight: UnsafeMutablePointer<Float>?, dHidden: UnsafeMutablePointer<Float>
    ) {
        let d = weight.cols, v = weight.rows
        GEMM.linearBackward(
            dLogits, rows: rows, outFeatures: v, x: input, inFeatures: d, weight: weight.tensor.pointer,
            dX: dHidden, dWeight: dWeight)
        if let scale { Vector.scale(dHidden, by: scale, rows * d) }
    }
}
