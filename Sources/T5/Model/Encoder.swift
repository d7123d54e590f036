/// The encoder's output for a padded batch: final hidden states and each input's true length.
public struct EncoderOutput: Sendable {
    /// (B, S, D), rows past an input's length are padding.
    public let hidden: Tensor
    public let lengths: [Int]
    /// (N, D) the same states packed: input i at rows `rows.first[i] ..< rows.first[i] + lengths[i]`.
    let packed: Tensor
    let rows: RowBatch
    public var batch: Int { lengths.count }
    public var sourceLength: Int { hidden.shape[1] }
}

extension T5Model {
    /// Runs the encoder stack (`T5Stack`, is_decoder = False) over a batch of token-id sequences of any lengths.
    /// Padding never reaches a real position: each input attends only to its own length, which is
    /// transformers' attention mask.
    ///
    /// Throws `.invalidOption` for an id outside the vocabulary or an input longer than the relative position
    /// bias covers, and `.tooLarge` when the activations would not fit in memory.
    public func encode(_ inputs: [[Int]]) throws(T5Error) -> EncoderOutput {
        try encode(inputs, blockInput: nil)
    }

    /// `encode`, handing `blockInput(b, x)` the residual stream entering block b, (N, D) with every input's
    /// tokens back to back (no padding), before the block runs: a distillation teacher's hidden states.
    func encode(_ inputs: [[Int]], blockInput: ((Int, UnsafePointer<Float>) -> Void)?) throws(T5Error) -> EncoderOutput {
        let c = config
        let b = inputs.count, s = max(1, inputs.map(\.count).max() ?? 1)
        let d = c.dModel, hk = innerDim, f = c.dFF
        try checkIDs(inputs)
        if s > encoderSupportedLength {
            throw .invalidOption(name: "input", reason: "\(s) tokens exceed the \(encoderSupportedLength) positions this model's relative_attention_max_distance can be expanded to")
        }
        // Packed rows: every input's tokens back to back, so no product runs over padding (a batch of mixed
        // lengths costs its tokens, not batch x longest). Attention reads each input's own rows.
        let rows = RowBatch(packing: inputs)
        let n = rows.rows
        try MemoryBudget.require(
            MemoryBudget.sum([
                MemoryBudget.floats(b, s, d), MemoryBudget.floats(n, d, 2), MemoryBudget.floats(n, hk, 4),
                MemoryBudget.floats(n, f, c.isGatedActivation ? 2 : 1), MemoryBudget.floats(Parallel.threads, s, s),
            ]),
            for: "encoding \(b) input\(b == 1 ? "" : "s") of up to \(s) tokens")
        let hidden = Tensor(zeros: [b, s, d])
        guard n > 0 else { return EncoderOutput(hidden: hidden, lengths: rows.lengths, packed: Tensor(zeros: [0, d]), rows: rows) }

        var unused = SeededGenerator(seed: 0)  // no dropout in inference: never drawn from
        let encoded = encoder.forward(
            ids: inputs.flatMap { $0.map(Int32.init) }, rows: rows, memory: nil, workspace: Workspace(), record: false,
            generator: &unused, blockInput: blockInput)
        // Unpacked into (B, S, D) for the decoder's cross-attention; padding rows are zero.
        for i in 0..<b where rows.lengths[i] > 0 {
            (hidden.pointer + i * s * d).update(from: encoded.output.pointer + rows.first[i] * d, count: rows.lengths[i] * d)
        }
        return EncoderOutput(hidden: hidden, lengths: rows.lengths, packed: encoded.output, rows: rows)
    }
}
