/// What training minimizes, as the trainer holds it: given each micro-batch before the student's forward, it
/// returns the `Objective` that batch's logits are scored by. An objective that needs more than the labels
/// (distillation: a teacher's distribution over the same batch) computes it here; every `Objective` is one
/// that needs nothing more (it returns itself).
public protocol BatchObjective: Sendable {
    /// The objective for `batch`'s logits.
    func bound(to batch: TrainingBatch) throws(T5Error) -> any Objective
    /// Settings a resumed run must repeat (merged into the checkpoint's run signature); empty by default.
    var signature: [String: String] { get }
}

/// What training minimizes, given the logits of every target token of a batch: cross-entropy against the
/// labels, or word-level distillation once bound to a batch's teacher logits. The loss and its gradient
/// are written side by side, as the kernels' forward and backward are.
public protocol Objective: BatchObjective {
    /// The loss summed over `rows` logit rows of `vocab` values (row `r` predicts `labels[r]`), the rows it
    /// counts and the rows whose argmax is the label. With `gradientScale`, then overwrites `logits` with
    /// `gradientScale · ∂(sum / counted)/∂logits`, which the backward pass starts from. `scratch` holds
    /// `rows` floats the objective may use between the two.
    func evaluate(
        logits: UnsafeMutablePointer<Float>, rows: Int, vocab: Int, labels: UnsafePointer<Int32>,
        scratch: UnsafeMutablePointer<Float>, gradientScale: Float?
    ) -> LossResult
    /// Whether the loss has a term on the student's hidden states (`hiddenStateLoss`); false by default.
    var usesHiddenStates: Bool { get }
    /// The term on the hidden states, added to `evaluate`'s loss; with `gradientScale`, adds
    /// `gradientScale · ∂term/∂state` into `states.gradients`. Called after `evaluate`. Default: 0.
    func hiddenStateLoss(_ states: BlockInputs, gradientScale: Float?) -> Double
}

/// The residual stream entering every block of the student's two stacks in one training pass, with a
/// gradient buffer for each (zero-filled) when the pass will run backward.
public struct BlockInputs {
    public let dModel: Int
    /// Per block, (Ns, D): the source tokens of the batch back to back, in input order.
    public let encoder: [Tensor]
    /// Per block, (Nt, D): the decoder rows in the order of the labels.
    public let decoder: [Tensor]
    /// Gradient buffers shaped as `encoder` and `decoder`; nil when evaluating.
    public let encoderGradients: [Tensor]?
    public let decoderGradients: [Tensor]?
}

extension Objective {
    public func bound(to batch: TrainingBatch) throws(T5Error) -> any Objective { self }
    public var signature: [String: String] { [:] }
    public var usesHiddenStates: Bool { false }
    public func hiddenStateLoss(_ states: BlockInputs, gradientScale: Float?) -> Double { 0 }
}

/// torch's `CrossEntropyLoss(label_smoothing:)` over the target tokens, as T5ForConditionalGeneration
/// computes it with `labels` (mean over the tokens of the batch).
public struct CrossEntropyObjective: Objective {
    public var labelSmoothing: Float

    public init(labelSmoothing: Float = 0) {
        precondition(labelSmoothing >= 0 && labelSmoothing <= 1, "label smoothing \(labelSmoothing) outside [0, 1]")
        self.labelSmoothing = labelSmoothing
    }

    public func evaluate(
        logits: UnsafeMutablePointer<Float>, rows: Int, vocab: Int, labels: UnsafePointer<Int32>,
        scratch: UnsafeMutablePointer<Float>, gradientScale: Float?
    ) -> LossResult {
        // The forward saves each row's log Σ exp in `scratch` for the backward.
        let (sum, tokens, correct) = CrossEntropy.forward(
            logits: logits, rows: rows, vocab: vocab, targets: labels, labelSmoothing: labelSmoothing,
            logSumExp: gradientScale == nil ? nil : scratch)
        let result = LossResult(loss: Float(sum / Double(tokens)), tokens: tokens, correct: correct)
        if let gradientScale {
            CrossEntropy.backward(
                logits: logits, rows: rows, vocab: vocab, targets: labels, labelSmoothing: labelSmoothing,
                scale: gradientScale / Float(tokens), logSumExp: scratch, into: logits)
        }
        return result
    }
}
