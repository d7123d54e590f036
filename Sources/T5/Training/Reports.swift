import Foundation

/// What one optimizer step did.
public struct StepReport: Sendable, Equatable {
    /// Steps completed, including this one.
    public var step: Int
    public var totalSteps: Int
    /// Mean cross-entropy over every non-padded target token of the step's micro-batches.
    public var loss: Double
    /// The learning rate applied (see `Optimizer.lastLearningRate`).
    public var learningRate: Double
    /// Global gradient norm before clipping.
    public var gradientNorm: Double
    /// Examples and unpadded tokens in the step.
    public var examples: Int
    public var inputTokens: Int
    public var targetTokens: Int
    /// Passes over the training data so far.
    public var epoch: Double
    /// Wall-clock seconds of this step and of the whole run so far.
    public var seconds: Double
    public var elapsed: Double
    /// Why the step was skipped (its loss or gradient norm was not finite), nil for a step that updated.
    public var skipped: String? = nil

    /// Input plus target tokens per second in this step.
    public var tokensPerSecond: Double { seconds > 0 ? Double(inputTokens + targetTokens) / seconds : 0 }
}

/// Metrics over a validation set.
public struct EvaluationReport: Sendable, Equatable {
    /// Per task (one per `--valid`).
    public struct Task: Sendable, Equatable {
        public var name: String
        public var loss: Double
        public var tokenAccuracy: Double
        public var exactMatch: Double?
        public var examples: Int
    }

    /// Steps completed when evaluated.
    public var step: Int
    /// Mean cross-entropy over all target tokens (no label smoothing, no dropout).
    public var loss: Double
    /// Fraction of target tokens whose argmax prediction (teacher forced) is right.
    public var tokenAccuracy: Double
    /// Fraction of examples whose greedy output equals the target exactly (with `evalGenerate`).
    public var exactMatch: Double?
    public var examples: Int
    public var tokens: Int
    public var tasks: [Task]
}

/// What a step callback tells the trainer.
public enum TrainingControl: Sendable {
    case `continue`
    /// Stop after this step: the trainer saves a checkpoint (when it has an output directory) and returns.
    case stop
}
