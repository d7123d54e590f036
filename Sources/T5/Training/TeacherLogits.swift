extension T5Model {
    /// The logits this model gives every target token of `batch` under teacher forcing, in inference mode (no
    /// dropout, no saved activations, its own weight precision): (Nt, V), the rows in the order of the
    /// batch's packed labels (`TrainingPass.labels`), as the student's logits are laid out.
    ///
    /// The encoder runs once over the batch's inputs; the decoder reads `[decoder_start] + target[..<last]` for
    /// every row at once, padded to the longest target. Padding comes after each row's real positions and the
    /// decoder is causal, so it changes no real row's logits; only the real rows are kept.
    public func teacherLogits(for batch: TrainingBatch) throws(T5Error) -> Tensor {
        try requireDecoder()
        let targets = batch.targetIDs, v = config.vocabSize
        let longest = targets.map(\.count).max() ?? 0
        try checkIDs(batch.inputIDs + targets)
        let state = try DecoderState(model: self, encoded: encode(batch.inputIDs), rowInput: Array(targets.indices), capacity: longest)
        var tokens = [Int]()
        tokens.reserveCapacity(targets.count * longest)
        for target in targets {
            tokens.append(config.decoderStartTokenID)
            tokens += target.dropLast()
            tokens += repeatElement(config.padTokenID, count: longest - target.count)
        }
        try state.forward(tokens: tokens)
        let logits = Tensor(zeros: [batch.targetTokenCount, v])  // (Nt, V)
        var row = 0
        for (b, target) in targets.enumerated() {
            (logits.pointer + row * v).update(from: state.logits.pointer + b * longest * v, count: target.count * v)
            row += target.count
        }
        return logits
    }
}
