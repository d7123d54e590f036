/// A training forward over one batch: the encoder and the decoder `T5Stack`s recording their activations, then
/// the LM head, keeping everything the backward reads (see Backward.swift, which walks it in reverse).
///
/// Matches T5ForConditionalGeneration.forward with `labels` in train mode (transformers 5.24,
/// models/t5/modeling_t5.py), dropout included (see `T5Stack.forward`).
final class TrainingPass {
    let config: T5Config
    let encoderStack: T5Stack
    let decoderStack: T5Stack
    let head: LMHead
    let encoder: StackActivations
    let decoder: StackActivations
    /// (Nt) the target id of each decoder row.
    let labels: [Int32]
    /// (Nt, D) the LM head's input: the decoder output, times d_model^-0.5 when the model rescales.
    let headInput: Tensor
    /// (Nt, V) logits. The backward overwrites them with their gradient.
    let logits: Tensor
    /// Where every buffer of the pass and of its backward comes from.
    let workspace: Workspace

    /// Runs the forward. `inputs` and `targets` are unpadded; the decoder reads
    /// `[decoder_start] + target[..<last]` (transformers' `_shift_right`) and predicts `target`.
    /// The buffers come from `workspace`, which is reset first: a previous pass over it must be finished.
    init(
        weights: T5Weights, config: T5Config, inputs: [[Int]], targets: [[Int]], dropoutRate: Float,
        workspace: Workspace, generator: inout SeededGenerator
    ) {
        precondition(!inputs.isEmpty && inputs.count == targets.count, "a batch needs as many targets as inputs, at least one")
        for (input, target) in zip(inputs, targets) {
            precondition(!input.isEmpty && !target.isEmpty, "empty input or target in a training batch")
            precondition((input + target).allSatisfy { $0 >= 0 && $0 < config.vocabSize }, "token id outside the vocabulary of \(config.vocabSize)")
        }
        precondition(dropoutRate >= 0 && dropoutRate < 1, "dropout rate \(dropoutRate) outside [0, 1)")
        self.config = config
        self.workspace = workspace
        workspace.reset()
        encoderStack = weights.encoder(config: config)
        decoderStack = weights.decoder(config: config)
        head = weights.head(config: config)
        let source = RowBatch(packing: inputs)
        let target = RowBatch(packing: targets)
        let sourceIDs = inputs.flatMap { $0.map(Int32.init) }
        let decoderIDs = targets.flatMap { t in ([config.decoderStartTokenID] + t.dropLast()).map(Int32.init) }
        labels = targets.flatMap { $0.map(Int32.init) }

        let encoded = encoderStack.forward(
            ids: sourceIDs, rows: source, memory: nil, workspace: workspace, record: true,
            dropoutRate: dropoutRate, generator: &generator)
        let decoded = decoderStack.forward(
            ids: decoderIDs, rows: target, memory: StackMemory(output: encoded.output, rows: source), workspace: workspace,
            record: true, dropoutRate: dropoutRate, generator: &generator)
        encoder = encoded.activations.unsafelyUnwrapped
        decoder = decoded.activations.unsafelyUnwrapped

        // LM head (T5ForConditionalGeneration.forward, modeling_t5.py:1047-1050), on a copy of the decoder
        // output when it rescales: the output is an activation the backward reads.
        let d = config.dModel, nt = target.rows
        if head.scale != nil {
            headInput = workspace.tensor([nt, d], zeroed: false)
            headInput.pointer.update(from: decoder.output.pointer, count: nt * d)
        } else {
            headInput = decoder.output
        }
        logits = workspace.tensor([nt, config.vocabSize], zeroed: false)
        head.forward(headInput.pointer, rows: nt, into: logits.pointer)
    }
}
