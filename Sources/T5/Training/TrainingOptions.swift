import Foundation

/// The settings of a fine-tuning run, with the `t5 finetune` defaults.
public struct TrainingOptions: Sendable, Equatable {
    /// How long to train.
    public enum Length: Sendable, Equatable {
        /// A number of optimizer steps.
        case steps(Int)
        /// Passes over the training examples (all tasks together): ⌈epochs · examples / (batch · accumulation)⌉ steps.
        case epochs(Double)
    }

    /// The optimizer (default: transformers' `Adafactor()`, the relative-step mode).
    public var optimizer: OptimizerChoice = .adafactor(.init())
    /// The learning-rate schedule applied to an external rate (AdamW, fixed-rate Adafactor).
    public var schedule: LearningRateSchedule.Kind = .constant
    /// Linear warmup steps of the schedule.
    public var warmupSteps = 0
    public var length: Length = .epochs(1)
    /// Examples per micro-batch.
    public var batchSize = 8
    /// Micro-batches per optimizer step; the loss is the token mean over all of them.
    public var gradientAccumulation = 1
    /// Clip the global gradient norm to this (0: no clipping). 1.0 is the transformers Trainer's default.
    public var maxGradNorm: Double = 1.0
    /// Label smoothing ε of the cross-entropy (transformers' `label_smoothing_factor`).
    public var labelSmoothing: Float = 0
    /// Dropout rate during training; nil uses the model config's `dropout_rate`.
    public var dropout: Float? = nil
    /// Seed of every random choice: data order, task mixing, dropout, initialization.
    public var seed: UInt64 = 42
    /// Evaluate every N steps (and at the end); nil: only at the end.
    public var evalEvery: Int? = nil
    /// Save a checkpoint every N steps (and at the end); nil: only at the end.
    public var saveEvery: Int? = nil
    /// Also measure exact match of greedy outputs during evaluation.
    public var evalGenerate = false
    /// Longest greedy output during evaluation.
    public var evalMaxNewTokens = 128
    /// Examples per evaluation batch; nil: `batchSize`.
    public var evalBatchSize: Int? = nil
    /// Batches per length-sorted pool (see `BatchSampler`).
    public var poolBatches = 50
    /// Steps with a non-finite loss or gradient norm that may be skipped (no update, counted and reported)
    /// before the run stops with `.diverged`; 0 stops at the first.
    public var maxNonFiniteSteps = 0

    public init() {}

    /// Checks ranges; throws `.invalidOption` naming the `t5 finetune` flag.
    public func validate() throws(T5Error) {
        func fail(_ name: String, _ reason: String) -> T5Error { .invalidOption(name: name, reason: reason) }
        switch length {
        case .steps(let n) where n < 1: throw fail("TrainingOptions.length.steps", "must be at least 1, got \(n)")
        case .epochs(let e) where !(e > 0) || !e.isFinite: throw fail("TrainingOptions.length.epochs", "must be a positive number, got \(e)")
        default: break
        }
        if batchSize < 1 { throw fail("TrainingOptions.batchSize", "must be at least 1, got \(batchSize)") }
        if gradientAccumulation < 1 { throw fail("TrainingOptions.gradientAccumulation", "must be at least 1, got \(gradientAccumulation)") }
        if warmupSteps < 0 { throw fail("TrainingOptions.warmupSteps", "must be 0 or more, got \(warmupSteps)") }
        if !(maxGradNorm >= 0) || !maxGradNorm.isFinite { throw fail("TrainingOptions.maxGradNorm", "must be 0 (no clipping) or a positive number, got \(maxGradNorm)") }
        if !(labelSmoothing >= 0 && labelSmoothing < 1) { throw fail("TrainingOptions.labelSmoothing", "must be in [0, 1), got \(labelSmoothing)") }
        if let d = dropout, !(d >= 0 && d < 1) { throw fail("TrainingOptions.dropout", "must be in [0, 1), got \(d)") }
        if let n = evalEvery, n < 1 { throw fail("TrainingOptions.evalEvery", "must be at least 1, got \(n)") }
        if let n = saveEvery, n < 1 { throw fail("TrainingOptions.saveEvery", "must be at least 1, got \(n)") }
        if let n = evalBatchSize, n < 1 { throw fail("TrainingOptions.evalBatchSize", "must be at least 1, got \(n)") }
        if evalMaxNewTokens < 1 { throw fail("TrainingOptions.evalMaxNewTokens", "must be at least 1, got \(evalMaxNewTokens)") }
        if poolBatches < 1 { throw fail("pool batches", "must be at least 1, got \(poolBatches)") }
        if maxNonFiniteSteps < 0 { throw fail("TrainingOptions.maxNonFiniteSteps", "must be 0 or more, got \(maxNonFiniteSteps)") }
        switch optimizer {
        case .adamW(let o):
            if !(o.learningRate > 0) { throw fail("OptimizerChoice.learningRate", "must be positive, got \(o.learningRate)") }
            if !(o.weightDecay >= 0) { throw fail("OptimizerChoice.weightDecay", "must be 0 or more, got \(o.weightDecay)") }
        case .adafactor(let o):
            try o.validate()
            if !(o.weightDecay >= 0) { throw fail("OptimizerChoice.weightDecay", "must be 0 or more, got \(o.weightDecay)") }
            if o.relativeStep && (schedule != .constant || warmupSteps > 0) {
                throw fail("TrainingOptions.schedule", "Adafactor without OptimizerChoice.learningRate computes its own (relative-step) learning rate; give OptimizerChoice.learningRate to use a schedule or warmup")
            }
        }
    }

    /// Optimizer steps for `examples` training examples.
    public func totalSteps(examples: Int) -> Int {
        switch length {
        case .steps(let n):
            return n
        case .epochs(let e):
            let perStep = Double(batchSize * gradientAccumulation)
            return max(1, Int((e * Double(examples) / perStep).rounded(.up)))
        }
    }
}
