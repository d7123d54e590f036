import Foundation

/// Fine-tunes a T5 model: the loop the transformers Trainer runs, on the CPU.
///
/// Each optimizer step draws `gradientAccumulation` micro-batches, accumulates the gradient of the
/// mean cross-entropy over all their non-padded target tokens (transformers' loss with
/// `num_items_in_batch`), clips the global gradient norm, and applies the optimizer at the
/// scheduled rate. Everything random derives from the seed and the position in the run, so a run
/// saved and resumed produces the same weights as one that never stopped.
///
/// ```swift
/// let trainer = try Trainer(model: model, training: data, options: options,
///                           files: try .copying(from: modelDirectory, config: model.config))
/// try trainer.run(output: outDirectory) { report in
///     print(report.step, report.loss)
///     return .continue
/// }
/// let tuned = trainer.model
/// ```
public final class Trainer {
    public let options: TrainingOptions
    public let training: TrainingData
    public let validation: TrainingData?
    /// The parameters being trained and their gradients.
    public let store: ParameterStore
    public let tokenizer: any Tokenizer
    public let optimizer: any Optimizer
    /// The schedule of an external learning rate; nil for relative-step Adafactor.
    public let schedule: LearningRateSchedule?
    /// What a checkpoint writes besides the weights; nil: the trainer cannot save.
    public let files: ModelDirectory?
    public private(set) var state: TrainingState
    /// What each step minimizes (cross-entropy with `options.labelSmoothing` unless another is given),
    /// bound to each micro-batch before its forward.
    public let objective: any BatchObjective
    private var sampler: any BatchSource
    /// Seconds of training already done when this session started (resumed runs).
    private let startElapsed: Double
    private let sessionStart = DispatchTime.now().uptimeNanoseconds

    /// Optimizer steps completed.
    public var completedSteps: Int { state.step }
    public var totalSteps: Int { state.totalSteps }
    public var isFinished: Bool { state.step >= state.totalSteps }
    /// The dropout rate training uses.
    public var dropoutRate: Float { options.dropout ?? store.config.dropoutRate }

    /// A new run from `model`'s weights. `frozen` keys (see `Freezing`) get no gradient and no optimizer
    /// state. `files` is needed to save checkpoints (`run(output:)`).
    public convenience init(
        model: T5Model, training: TrainingData, validation: TrainingData? = nil, options: TrainingOptions = .init(),
        frozen: Set<String> = [], files: ModelDirectory? = nil, objective: (any BatchObjective)? = nil
    ) throws(T5Error) {
        try options.validate()
        try model.requireDecoder()
        let store = ParameterStore(model: model, frozen: frozen)
        let total = options.totalSteps(examples: training.exampleCount)
        let state = TrainingState(
            step: 0, totalSteps: total, seed: options.seed, position: DataPosition(drawn: Array(repeating: 0, count: training.tasks.count)),
            examplesSeen: 0, tokensSeen: 0, elapsedSeconds: 0, bestEvalLoss: nil,
            signature: Self.signature(options: options, training: training, frozen: frozen, optimizer: options.optimizer.make(),
                                      objective: objective))
        self.init(store: store, tokenizer: model.tokenizer, training: training, validation: validation, options: options,
                  state: state, optimizer: options.optimizer.make(), files: files, objective: objective)
    }

    /// Continues the run whose newest checkpoint is in `output` (see `Checkpoint`). The weights,
    /// optimizer moments, step and data position come from the checkpoint; `training`, `options`
    /// and `frozen` must describe the same run (throws `.invalidOption("--resume", …)` naming the
    /// first difference), except the run's length, which may change.
    public static func resume(
        from output: URL, training: TrainingData, validation: TrainingData? = nil, options: TrainingOptions = .init(),
        frozen: Set<String> = [], files: ModelDirectory? = nil, objective: (any BatchObjective)? = nil
    ) throws(T5Error) -> Trainer {
        try options.validate()
        guard let checkpoint = Checkpoint.latest(in: output) else {
            throw .invalidOption(name: "Trainer.resume", reason: "\(output.path) holds no checkpoint to resume from")
        }
        let model = try T5Model(directory: checkpoint, packWeights: false)
        var (state, moments) = try Checkpoint.loadState(from: checkpoint)
        let optimizer = options.optimizer.make()
        let current = signature(options: options, training: training, frozen: frozen, optimizer: optimizer, objective: objective)
        if let difference = RunSignature.firstDifference(saved: state.signature, current: current) {
            throw .invalidOption(name: "Trainer.resume", reason: "the checkpoint at step \(state.step) was made with different settings: \(difference)")
        }
        try state.validate(
            path: checkpoint.appendingPathComponent(Checkpoint.stateFile).path, taskCount: training.tasks.count,
            batchSize: options.batchSize,
            poolBatches: BatchSampler.effectivePoolBatches(options.poolBatches, data: training, batchSize: options.batchSize),
            gradientAccumulation: options.gradientAccumulation)
        if let corpus = state.corpus {
            // The corpus stream's saved position must be the one of the pool's first draw from it.
            let path = checkpoint.appendingPathComponent(Checkpoint.stateFile).path
            guard let t = training.tasks.firstIndex(where: { $0.corpus != nil }), corpus.chunk == state.drawn[t],
                  corpus.file < training.tasks[t].corpus?.files.count ?? 0 else {
                throw .corruptCheckpoint(path: path, reason: "corpus: position at chunk \(corpus.chunk), file \(corpus.file) does not match the data drawn (\(state.drawn))")
            }
        }
        state.totalSteps = options.totalSteps(examples: training.exampleCount)
        let store = ParameterStore(model: model, frozen: frozen)
        var shapes = [String: [Int]]()
        for spec in store.specs where store.trainable.contains(spec.key) { shapes[spec.key] = spec.shape }
        // Skipped steps never reached the optimizer, whose step count (bias corrections, relative step) is lower.
        try optimizer.restore(step: state.step - (state.skippedSteps ?? 0), tensors: moments, shapes: shapes,
                              path: checkpoint.appendingPathComponent(Checkpoint.optimizerFile).path)
        moments = [:]
        var resumedFiles = files
        // The saved config carries any --dropout of the original run; keep writing it.
        if var f = resumedFiles { f.config = model.config; resumedFiles = f }
        return Trainer(store: store, tokenizer: model.tokenizer, training: training, validation: validation, options: options,
                       state: state, optimizer: optimizer, files: resumedFiles, objective: objective)
    }

    private init(store: ParameterStore, tokenizer: any Tokenizer, training: TrainingData, validation: TrainingData?,
                 options: TrainingOptions, state: TrainingState, optimizer: any Optimizer, files: ModelDirectory?,
                 objective: (any BatchObjective)?) {
        self.store = store
        self.objective = objective ?? CrossEntropyObjective(labelSmoothing: options.labelSmoothing)
        self.tokenizer = tokenizer
        self.training = training
        self.validation = validation
        self.options = options
        self.state = state
        self.optimizer = optimizer
        self.files = files
        startElapsed = state.elapsedSeconds
        schedule = options.optimizer.usesExternalLearningRate
            ? LearningRateSchedule(options.schedule, warmupSteps: options.warmupSteps, totalSteps: state.totalSteps)
            : nil
        sampler = BatchSampler(data: training, batchSize: options.batchSize, seed: options.seed,
                               poolBatches: options.poolBatches, position: state.position)
    }

    /// The settings a resumed run must repeat.
    static func signature(
        options o: TrainingOptions, training: TrainingData, frozen: Set<String>, optimizer: any Optimizer,
        objective: (any BatchObjective)? = nil
    ) -> [String: String] {
        var s = objective?.signature ?? [:]
        s["optimizer"] = optimizer.summary
        if o.optimizer.usesExternalLearningRate {
            s["schedule"] = "\(o.schedule.rawValue), warmup \(o.warmupSteps)"
        }
        s["batch_size"] = "\(o.batchSize)"
        s["grad_accum"] = "\(o.gradientAccumulation)"
        s["max_grad_norm"] = "\(o.maxGradNorm)"
        s["label_smoothing"] = "\(o.labelSmoothing)"
        s["dropout"] = o.dropout.map { "\($0)" } ?? "config"
        s["seed"] = "\(o.seed)"
        s["pool_batches"] = "\(o.poolBatches)"
        s["freeze"] = frozen.isEmpty ? "nothing" : "\(frozen.count) tensors, " + RunSignature.fingerprint(frozen.sorted().map {
            TokenizedExample(inputIDs: Array($0.utf8).map(Int.init), targetIDs: [])
        })
        for (i, task) in training.tasks.enumerated() {
            if let corpus = task.corpus {
                s["train[\(i)]"] = "\(corpus.signature), rate \(training.rates[i])"
                continue
            }
            s["train[\(i)]"] = "prefix \(task.source.prefix.debugDescription), \(RunSignature.fingerprint(task.examples)), rate \(training.rates[i])"
        }
        return s
    }

    /// The model with the current weights (shares them: use it before the next step, or copy).
    public var model: T5Model { store.makeModel(tokenizer: tokenizer) }

    /// Runs one optimizer step. A step whose loss or gradient norm is not finite updates nothing: it is
    /// skipped (and reported) while `options.maxNonFiniteSteps` allows, else `.diverged` is thrown and the
    /// trainer's state is left as it was before the step.
    @discardableResult
    public func step() throws(T5Error) -> StepReport {
        let started = DispatchTime.now().uptimeNanoseconds
        var micro = [TrainingBatch]()
        for _ in 0..<options.gradientAccumulation { micro.append(try sampler.next()) }
        let targetCounts = micro.map { $0.targetIDs.reduce(0) { $0 + $1.count } }
        let inputTokens = micro.reduce(0) { $0 + $1.inputIDs.reduce(0) { $0 + $1.count } }
        let targetTokens = targetCounts.reduce(0, +)
        store.zeroGradients()
        var lossSum = 0.0
        for (m, batch) in micro.enumerated() {
            var generator = RandomStream.dropout.generator(seed: options.seed, state.step, m)
            // Each micro-batch's mean loss weighted by its share of the step's target tokens: the
            // gradient is that of the mean over every target token of the step.
            let share = Float(targetCounts[m]) / Float(max(targetTokens, 1))
            let bound = try objective.bound(to: batch)
            let result = store.accumulateGradients(batch, objective: bound, dropoutRate: dropoutRate,
                                                   generator: &generator, lossScale: share)
            lossSum += Double(result.loss) * Double(targetCounts[m])
        }
        let trainable = store.specs.compactMap { store.gradients[$0.key] }
        let norm = GradientClipping.clip(trainable, maxNorm: options.maxGradNorm)
        let loss = lossSum / Double(max(targetTokens, 1))
        let skipped: String? = !loss.isFinite ? "the loss is \(loss)" : (!norm.isFinite ? "the gradient norm is \(norm)" : nil)
        if let skipped {
            let count = (state.skippedSteps ?? 0) + 1
            if count > options.maxNonFiniteSteps {
                throw .diverged(step: state.step + 1, reason: skipped + (count > 1 ? " (after \(count - 1) skipped steps)" : ""))
            }
            state.skippedSteps = count
        } else {
            let rate = schedule?.learningRate(base: options.optimizer.baseLearningRate ?? 0, step: state.step) ?? 0
            optimizer.step(parameters: store.values, gradients: store.gradients, learningRate: rate)
        }

        let examples = micro.reduce(0) { $0 + $1.inputIDs.count }
        state.step += 1
        state.position = sampler.position
        state.examplesSeen += examples
        state.tokensSeen += inputTokens + targetTokens
        let now = DispatchTime.now().uptimeNanoseconds
        state.elapsedSeconds = startElapsed + Double(now - sessionStart) / 1e9
        return StepReport(
            step: state.step, totalSteps: state.totalSteps, loss: loss,
            learningRate: optimizer.lastLearningRate, gradientNorm: norm, examples: examples,
            inputTokens: inputTokens, targetTokens: targetTokens,
            epoch: Double(state.examplesSeen) / Double(max(training.exampleCount, 1)),
            seconds: Double(now - started) / 1e9, elapsed: state.elapsedSeconds, skipped: skipped)
    }

    /// Evaluates on the validation data (nil without any): loss and token accuracy under teacher
    /// forcing, and with `generate` (default: `options.evalGenerate`) the exact match of greedy outputs.
    public func evaluate(generate: Bool? = nil) -> EvaluationReport? {
        guard let validation else { return nil }
        let batchSize = options.evalBatchSize ?? options.batchSize
        let batches = EvaluationBatches.make(validation, batchSize: batchSize)
        let taskCount = validation.tasks.count
        var loss = [Double](repeating: 0, count: taskCount), tokens = [Int](repeating: 0, count: taskCount)
        var correct = [Int](repeating: 0, count: taskCount), matches = [Int](repeating: 0, count: taskCount)
        let withGeneration = generate ?? options.evalGenerate
        let model = withGeneration ? self.model : nil
        var greedy = GenerationOptions()
        greedy.maxNewTokens = options.evalMaxNewTokens
        for members in batches {
            // Evaluate per task within the batch so each task's figures are exact.
            for t in Set(members.map(\.task)).sorted() {
                let examples = members.filter { $0.task == t }.map { validation.tasks[t].examples[$0.index] }
                let batch = TrainingBatch(inputIDs: examples.map(\.inputIDs), targetIDs: examples.map(\.targetIDs))
                let r = store.evaluate(batch, objective: CrossEntropyObjective())
                loss[t] += Double(r.loss) * Double(r.tokens)
                tokens[t] += r.tokens
                correct[t] += r.correct
                if let model, let outputs = try? model.generate(ids: batch.inputIDs, options: greedy) {
                    for (output, example) in zip(outputs, examples) {
                        if Self.stripEOS(output.first?.ids ?? []) == Self.stripEOS(example.targetIDs) { matches[t] += 1 }
                    }
                }
            }
        }
        let counts = validation.tasks.map(\.examples.count)
        let totalTokens = tokens.reduce(0, +), totalExamples = counts.reduce(0, +)
        let tasks = (0..<taskCount).map { t in
            EvaluationReport.Task(
                name: validation.tasks[t].source.name, loss: loss[t] / Double(max(tokens[t], 1)),
                tokenAccuracy: Double(correct[t]) / Double(max(tokens[t], 1)),
                exactMatch: withGeneration ? Double(matches[t]) / Double(max(counts[t], 1)) : nil, examples: counts[t])
        }
        let report = EvaluationReport(
            step: state.step, loss: loss.reduce(0, +) / Double(max(totalTokens, 1)),
            tokenAccuracy: Double(correct.reduce(0, +)) / Double(max(totalTokens, 1)),
            exactMatch: withGeneration ? Double(matches.reduce(0, +)) / Double(max(totalExamples, 1)) : nil,
            examples: totalExamples, tokens: totalTokens, tasks: tasks)
        state.bestEvalLoss = min(state.bestEvalLoss ?? .infinity, report.loss)
        return report
    }

    private static func stripEOS(_ ids: [Int]) -> ArraySlice<Int> {
        ids.last == T5Tokenizer.eosID ? ids.dropLast() : ids[...]
    }

    /// Saves a checkpoint of the current step into `output` (see `Checkpoint.save`).
    @discardableResult
    public func saveCheckpoint(in output: URL) throws(T5Error) -> URL {
        guard let files else {
            throw .writeFailed(path: output.path, reason: "the trainer was created without model files (config, spiece.model) to save")
        }
        // A weight the last update pushed past the float range is never written: the previous checkpoint stays.
        for spec in store.specs {
            guard let t = store.values[spec.key], !FiniteCheck.isFinite(t.pointer, t.count) else { continue }
            throw .diverged(step: state.step, reason: "the update made \(spec.key) non-finite")
        }
        return try Checkpoint.save(values: store.values, specs: store.specs, files: files,
                                   optimizerState: optimizer.stateTensors(), state: state, in: output)
    }

    /// Trains to the end: steps, evaluations every `evalEvery` steps and at the end (with validation
    /// data), checkpoints every `saveEvery` steps and at the end (with an `output` directory), metrics to
    /// `output/metrics.jsonl`. `onStep` may return `.stop` to end early (a checkpoint is still saved).
    ///
    /// `pauseAt` ends this session after that step as if it were the end (evaluated and saved) while the
    /// schedule still spans `totalSteps`: successive halving (`t5 tune`) trains a trial to a rung, compares it,
    /// and continues the promoted ones with `resume` on the same learning-rate curve.
    public func run(
        output: URL? = nil,
        pauseAt: Int? = nil,
        onStep: (StepReport) -> TrainingControl = { _ in .continue },
        onEvaluation: (EvaluationReport) -> Void = { _ in }
    ) throws(T5Error) {
        var log: MetricsLog?
        if let output {
            // Everything saving needs is checked before the first step, not after the last.
            if files == nil {
                throw .writeFailed(path: output.path, reason: "the trainer was created without model files (config, spiece.model) to save checkpoints")
            }
            try Checkpoint.createDirectory(output)
            Checkpoint.removeStaleTemporaries(in: output)
            log = try MetricsLog(url: output.appendingPathComponent("metrics.jsonl"), keepingThrough: state.step > 0 ? state.step : nil)
        }
        // A resumed run that is already finished has nothing new to save.
        var lastEvaluated = -1, lastSaved = state.step > 0 ? state.step : -1
        func evaluateNow() {
            guard let report = evaluate() else { return }
            lastEvaluated = state.step
            log?.append(report)
            onEvaluation(report)
        }
        func saveNow() throws(T5Error) {
            guard let output else { return }
            try saveCheckpoint(in: output)
            lastSaved = state.step
        }
        func paused() -> Bool { pauseAt.map { state.step >= $0 } ?? false }
        while !isFinished && !paused() {
            let report = try step()
            log?.append(report)
            let control = onStep(report)
            if let n = options.evalEvery, state.step % n == 0 { evaluateNow() }
            if let n = options.saveEvery, state.step % n == 0 { try saveNow() }
            if case .stop = control { break }
        }
        if (isFinished || paused()) && lastEvaluated != state.step { evaluateNow() }
        if lastSaved != state.step { try saveNow() }
    }
}
