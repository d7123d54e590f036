/// What a distillation teacher computes for one batch: the logits of every target token and, when asked, the
/// residual stream entering each of its blocks, all in the student's row order.
struct TeacherOutputs {
    /// (Nt, V) in the order of the batch's packed labels.
    let logits: Tensor
    /// Per encoder block, (Ns, D): the source tokens back to back in input order; empty unless recorded.
    let encoderStates: [Tensor]
    /// Per decoder block, (Nt, D) in label order; empty unless recorded.
    let decoderStates: [Tensor]
}

extension T5Model {
    /// The logits this model gives every target token of `batch` under teacher forcing, in inference mode (no
    /// dropout, no saved activations, its own weight precision): (Nt, V), the rows in the order of the
    /// batch's packed labels (`TrainingPass.labels`), as the student's logits are laid out.
    public func teacherLogits(for batch: TrainingBatch) throws(T5Error) -> Tensor {
        try teacherForward(batch, recordingHiddenStates: false).logits
    }

    /// The forward of `teacherLogits`, also keeping every block's input when `recordingHiddenStates`.
    ///
    /// The encoder runs once over the batch's inputs; the decoder reads `[decoder_start] + target[..<last]` for
    /// every row at once, padded to the longest target. Padding comes after each row's real positions and the
    /// decoder is causal, so it changes no real row's values; only the real rows are kept.
    func teacherForward(_ batch: TrainingBatch, recordingHiddenStates: Bool) throws(T5Error) -> TeacherOutputs {
        try requireDecoder()
        let targets = batch.targetIDs, v = config.vocabSize, d = config.dModel
        let longest = targets.map(\.count).max() ?? 0
        let sourceRows = batch.inputIDs.reduce(0) { $0 + $1.count }, targetRows = batch.targetTokenCount
        try checkIDs(batch.inputIDs + targets)
        var encoderStates = [Tensor](), decoderStates = [Tensor]()
        let encoded = try encode(batch.inputIDs, blockInput: recordingHiddenStates ? { _, x in
            let state = Tensor(zeros: [sourceRows, d])  // (Ns, D)
            state.pointer.update(from: x, count: sourceRows * d)
            encoderStates.append(state)
        } : nil)
        let state = try DecoderState(model: self, encoded: encoded, rowInput: Array(targets.indices), capacity: longest)
        var tokens = [Int]()
        tokens.reserveCapacity(targets.count * longest)
        for target in targets {
            tokens.append(config.decoderStartTokenID)
            tokens += target.dropLast()
            tokens += repeatElement(config.padTokenID, count: longest - target.count)
        }
        /// Copies the real rows of a (B·longest, width) padded buffer into (Nt, width) label order.
        func packed(_ padded: UnsafePointer<Float>, width: Int) -> Tensor {
            let out = Tensor(zeros: [targetRows, width])
            var row = 0
            for (b, target) in targets.enumerated() {
                (out.pointer + row * width).update(from: padded + b * longest * width, count: target.count * width)
                row += target.count
            }
            return out
        }
        try state.forward(tokens: tokens, blockInput: recordingHiddenStates ? { _, x in
            decoderStates.append(packed(x, width: d))
        } : nil)
        return TeacherOutputs(logits: packed(state.logits.pointer, width: v), encoderStates: encoderStates, decoderStates: decoderStates)
    }
}
