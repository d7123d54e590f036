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
    /// every row at once, each row its own length.
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
        // One slot per target, each reading its own tokens: rows of different lengths, no padding, so the
        // logits and block inputs come out in label order.
        let state = try DecoderState(model: self, encoded: encoded, initialPositions: longest)
        let slots = try state.cache.admit(inputs: Array(targets.indices))
        var tokens = [Int]()
        tokens.reserveCapacity(targetRows)
        for target in targets {
            tokens.append(config.decoderStartTokenID)
            tokens += target.dropLast()
        }
        try state.forward(slots: slots, tokens: tokens, counts: targets.map(\.count), blockInput: recordingHiddenStates ? { _, x in
            let state = Tensor(zeros: [targetRows, d])  // (Nt, D)
            state.pointer.update(from: x, count: targetRows * d)
            decoderStates.append(state)
        } : nil)
        let logits = Tensor(zeros: [targetRows, v])
        logits.pointer.update(from: state.logits.pointer, count: targetRows * v)
        return TeacherOutputs(logits: logits, encoderStates: encoderStates, decoderStates: decoderStates)
    }
}
