import ArgumentParser
import T5

/// The training flags every training command shares (finetune today; pretrain and distill next): optimizer,
/// schedule, length, batching, regularization, freezing, evaluation and checkpoint cadence, resuming and the
/// seed. One definition, so that the commands agree on names, defaults and help.
struct TrainingFlags: ParsableArguments {
    enum OptimizerName: String, ExpressibleByArgument, CaseIterable {
        case adafactor, adamw
    }

    /// T5's optimizer, the default of every training command; `t5 bench --finetune` times the same one by
    /// default, so that its figures describe what a run without --optimizer does.
    static let defaultOptimizer = OptimizerName.adafactor

    @Option(parsing: .unconditional, help: "Passes over the training data (default 3 when --steps is not given).") var epochs: Double?
    @Option(parsing: .unconditional, help: "Optimizer steps (instead of --epochs).") var steps: Int?
    @Option(parsing: .unconditional, help: "Examples per micro-batch.") var batchSize = 8
    @Option(parsing: .unconditional, help: "Micro-batches per optimizer step (the loss is the mean over all their target tokens).") var gradAccum = 1
    @Option(parsing: .unconditional, help: "Learning rate. Adafactor with --lr is transformers' Adafactor(lr=X, scale_parameter=False, relative_step=False, warmup_init=False); without it, the relative-step mode. AdamW default: 1e-3 (torch's).")
    var lr: Double?
    @Option(parsing: .unconditional, help: "adafactor (T5's optimizer) or adamw (torch's defaults: betas 0.9/0.999, eps 1e-8).") var optimizer: OptimizerName = Self.defaultOptimizer
    @Option(parsing: .unconditional, help: "Learning-rate schedule: constant, linear (warmup then linear decay to 0), or inverse-sqrt.")
    var schedule: String = LearningRateSchedule.Kind.constant.rawValue
    @Option(parsing: .unconditional, help: "Linear warmup steps from 0.") var warmup = 0
    @Option(parsing: .unconditional, help: "Decoupled weight decay (default: 0.01 for AdamW as in torch, 0 for Adafactor).") var weightDecay: Double?
    @Option(parsing: .unconditional, help: "Clip the global gradient norm to X (0 = no clipping).") var maxGradNorm: Double = 1.0
    @Option(parsing: .unconditional, help: ArgumentHelp("Skip up to N steps whose loss or gradient norm is NaN or infinite (no update; counted in metrics.jsonl and the summary) before stopping; 0 stops at the first with an error, keeping the last checkpoint.", valueName: "N"))
    var skipNonfiniteSteps = 0
    @Option(parsing: .unconditional, help: "Label smoothing of the cross-entropy, in [0, 1).") var labelSmoothing: Float = 0
    @Option(parsing: .unconditional, help: "Dropout rate during training (overrides the config's dropout_rate and is saved in config.json).") var dropout: Float?
    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("Freeze tensors: embeddings, encoder, decoder, lm-head, a block range such as encoder.block.0-3, or any tensor-name prefix; comma-separated or repeated.", valueName: "SPEC"))
    var freeze: [String] = []
    @Option(parsing: .unconditional, help: "Evaluate on --valid every N steps (and always at the end).") var evalEvery: Int?
    @Flag(help: "Also report the exact match of greedy outputs when evaluating.") var evalGenerate = false
    @Option(parsing: .unconditional, help: "Save a checkpoint every N steps (and always at the end).") var saveEvery: Int?
    @Flag(help: "Continue the run saved in --out from its newest checkpoint, exactly (same data and settings).") var resume = false
    @Option(parsing: .unconditional, help: ArgumentHelp("End this session after step N as if it were the last (evaluated and saved); the learning-rate schedule still spans the whole run, and --resume continues it. t5 tune's successive halving pauses trials at its rungs this way.", valueName: "N"))
    var pauseAt: Int?
    @Option(parsing: .unconditional, help: "Seed of data order, task mixing, dropout and --from-scratch weights.") var seed: UInt64 = 42

    func validate() throws {
        if epochs != nil && steps != nil { throw ValidationError("give --epochs or --steps, not both") }
        if let pauseAt, pauseAt < 1 { throw invalidValue("--pause-at", "must be at least 1, got \(pauseAt)") }
        if LearningRateSchedule.Kind(rawValue: schedule) == nil {
            throw ValidationError("--schedule must be one of \(LearningRateSchedule.Kind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(schedule)'")
        }
    }

    /// The library's options from the flags; `evalMaxNewTokens` bounds generation during evaluation.
    func options(evalMaxNewTokens: Int) throws(T5Error) -> TrainingOptions {
        var o = TrainingOptions()
        switch optimizer {
        case .adamw:
            var a = AdamW.Options()
            if let lr { a.learningRate = lr }
            if let weightDecay { a.weightDecay = weightDecay }
            o.optimizer = .adamW(a)
        case .adafactor:
            var a = lr.map { Adafactor.Options.fixed(learningRate: $0) } ?? Adafactor.Options()
            if let weightDecay { a.weightDecay = weightDecay }
            o.optimizer = .adafactor(a)
        }
        o.schedule = LearningRateSchedule.Kind(rawValue: schedule) ?? .constant
        o.warmupSteps = warmup
        o.length = steps.map { .steps($0) } ?? .epochs(epochs ?? 3)
        o.batchSize = batchSize
        o.gradientAccumulation = gradAccum
        o.maxGradNorm = maxGradNorm
        o.labelSmoothing = labelSmoothing
        o.dropout = dropout
        o.seed = seed
        o.evalEvery = evalEvery
        o.saveEvery = saveEvery
        o.evalGenerate = evalGenerate
        o.evalMaxNewTokens = evalMaxNewTokens
        o.maxNonFiniteSteps = skipNonfiniteSteps
        try o.validate()
        return o
    }
}
