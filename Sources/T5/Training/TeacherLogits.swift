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
    /// The teacher's own stacks over the student's packed rows (`RowBatch`): the encoder over the inputs, the
    /// decoder over `[decoder_start] + target[..<last]` of every row with the encoder output as its memory,
    /// then the LM head, in the teacher's weight precision. No row is padded, so the rows come out in label
    /// order.
    func teacherForward(_ batch: TrainingBatch, recordingHiddenStates: Bool) throws(T5Error) -> TeacherOutputs {
        try requireDecoder()
        guard let decoder, let head else { throw .noDecoder(architecture: architecture) }
        let inputs = batch.inputIDs, targets = batch.targetIDs, c = config, v = c.vocabSize, d = c.dModel
        try checkIDs(inputs + targets)
        let source = RowBatch(packing: inputs), target = RowBatch(packing: targets)
        if source.maxLength > encoderSupportedLength || target.maxLength > decoderSupportedLength {
            throw .invalidOption(name: "batch", reason: "\(max(source.maxLength, target.maxLength)) tokens exceed the positions this model's relative_attention_max_distance can be expanded to")
        }
        let ns = source.rows, nt = target.rows, hk = innerDim
        let blocks = c.numLayers + c.numDecoderLayers
        try MemoryBudget.require(
            MemoryBudget.sum([
                MemoryBudget.floats(nt, v), MemoryBudget.floats(ns + nt, d, 3), MemoryBudget.floats(ns + nt, hk, 4),
                MemoryBudget.floats(ns + nt, c.dFF, c.isGatedActivation ? 2 : 1),
                MemoryBudget.floats(max(source.maxLength, target.maxLength), max(source.maxLength, target.maxLength), Parallel.threads),
                recordingHiddenStates ? MemoryBudget.floats(ns + nt, d, blocks) : 0,
            ]),
            for: "a teacher pass over \(inputs.count) example\(inputs.count == 1 ? "" : "s")")
        var encoderStates = [Tensor](), decoderStates = [Tensor]()
        /// Keeps a copy of the residual stream entering each block, (rows, D).
        func recorder(_ rows: Int, into states: UnsafeMutablePointer<[Tensor]>) -> ((Int, UnsafePointer<Float>) -> Void)? {
            guard recordingHiddenStates else { return nil }
            return { _, x in
                let state = Tensor(zeros: [rows, d])
                state.pointer.update(from: x, count: rows * d)
                states.pointee.append(state)
            }
        }
        let workspace = Workspace()
        var unused = SeededGenerator(seed: 0)  // no dropout: never drawn from
        let logits = Tensor(zeros: [nt, v])
        withUnsafeMutablePointer(to: &encoderStates) { encoderStates in
            withUnsafeMutablePointer(to: &decoderStates) { decoderStates in
                let encoded = encoder.forward(
                    ids: inputs.flatMap { $0.map(Int32.init) }, rows: source, memory: nil, workspace: workspace,
                    record: false, generator: &unused, blockInput: recorder(ns, into: encoderStates))
                let decoderIDs = targets.flatMap { t in ([c.decoderStartTokenID] + t.dropLast()).map(Int32.init) }
                let decoded = decoder.forward(
                    ids: decoderIDs, rows: target, memory: StackMemory(output: encoded.output, rows: source),
                    workspace: workspace, record: false, generator: &unused, blockInput: recorder(nt, into: decoderStates))
                head.forward(decoded.output.pointer, rows: nt, into: logits.pointer)
            }
        }
        return TeacherOutputs(logits: logits, encoderStates: encoderStates, decoderStates: decoderStates)
    }
}
