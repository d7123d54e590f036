import Foundation
import Synchronization

/// Fine-tuning in one call, the common case of `Trainer` with the model directory named once:
///
/// ```swift
/// let tuned = try await Finetuning.run(
///     model: URL(fileURLWithPath: "t5-small"),
///     train: [.examples("sum", [TextExample(input: "summarize: ...", target: "...")])],
///     options: options, output: URL(fileURLWithPath: "tuned"))
/// ```
///
/// `events` is the same run as an `AsyncSequence` of steps and evaluations. The run is `Trainer.run` on a
/// thread of its own; cancelling the consuming task stops it after the current step, with a checkpoint.
/// Resuming, several validation sets, custom tokenization or a custom loop: use `Trainer` itself.
public enum Finetuning {
    /// A task's data: a file (JSON Lines, TSV, CSV; see `DataFile`) or examples held in memory, with an
    /// optional prefix prepended to every input (`"summarize: "`); or span corruption of text files.
    public enum Task: Sendable {
        case file(String, prefix: String = "")
        case examples(String, [TextExample], prefix: String = "")
        /// T5's span corruption of unlabelled text files, streamed (see `SpanCorruption`, `CorpusReader`).
        case spanCorruption([String], inputLength: Int = 512, noiseDensity: Double = 0.15, meanSpanLength: Double = 3,
                            onePerLine: Bool = false)
    }

    /// What a run reports as it goes.
    public enum Event: Sendable {
        case step(StepReport)
        case evaluation(EvaluationReport)
    }

    /// Trains the model in `model` (a directory) on `train` with `options`, evaluating on `validation`,
    /// freezing the tensors `freeze` selects (`Freezing`), and saves checkpoints and the result in
    /// `output`, which must not exist or be empty. Returns the trained model.
    public static func run(
        model: URL, train: [Task], validation: [Task] = [], options: TrainingOptions = .init(),
        freeze: [String] = [], maxInputTokens: Int? = nil, maxTargetTokens: Int? = nil, output: URL,
        onEvent: @escaping @Sendable (Event) -> Void = { _ in }
    ) async throws(T5Error) -> T5Model {
        try await run(Settings(model: model, train: train, validation: validation, options: options, freeze: freeze,
                               maxInputTokens: maxInputTokens, maxTargetTokens: maxTargetTokens, output: output),
                      onEvent: onEvent)
    }

    /// `run(...)` with its settings gathered (`Distiller.run` adds a teacher).
    static func run(_ settings: Settings, onEvent: @escaping @Sendable (Event) -> Void) async throws(T5Error) -> T5Model {
        // The training thread keeps the caller's scoped thread count (`T5Runtime.withThreads`).
        let scope = Parallel.currentScope
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<T5Model, T5Error>, Never>) in
                Thread.detachNewThread {
                    continuation.resume(returning: Parallel.withScope(scope) {
                        Result { () throws(T5Error) in try settings.train(onEvent: onEvent) }
                    })
                }
            }
        } onCancel: {
            settings.cancel()
        }
        return try result.get()
    }

    /// The run of `run(...)` as a sequence of its steps and evaluations; the sequence ends when training
    /// does, or throws its error. Leaving the loop early stops training after the current step.
    public static func events(
        model: URL, train: [Task], validation: [Task] = [], options: TrainingOptions = .init(),
        freeze: [String] = [], maxInputTokens: Int? = nil, maxTargetTokens: Int? = nil, output: URL
    ) -> AsyncThrowingStream<Event, Error> {
        let settings = Settings(model: model, train: train, validation: validation, options: options, freeze: freeze,
                                maxInputTokens: maxInputTokens, maxTargetTokens: maxTargetTokens, output: output)
        let (stream, continuation) = AsyncThrowingStream<Event, Error>.makeStream()
        continuation.onTermination = { _ in settings.cancel() }
        let scope = Parallel.currentScope
        Thread.detachNewThread {
            Parallel.withScope(scope) {
                do {
                    _ = try settings.train { continuation.yield($0) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        }
        return stream
    }

    /// Everything a run needs, `Sendable`, so that the trainer is built on the thread that runs it.
    final class Settings: Sendable {
        let model: URL, train: [Task], validation: [Task], options: TrainingOptions, freeze: [String]
        let maxInputTokens: Int?, maxTargetTokens: Int?, output: URL
        /// The teacher of a distillation run; nil for fine-tuning.
        let teacher: Distiller.Teacher?
        private let cancelled = Synchronization.Atomic<Bool>(false)

        init(model: URL, train: [Task], validation: [Task], options: TrainingOptions, freeze: [String],
             maxInputTokens: Int?, maxTargetTokens: Int?, output: URL, teacher: Distiller.Teacher? = nil) {
            self.model = model
            self.train = train
            self.validation = validation
            self.options = options
            self.freeze = freeze
            self.maxInputTokens = maxInputTokens
            self.maxTargetTokens = maxTargetTokens
            self.output = output
            self.teacher = teacher
        }

        func cancel() { cancelled.store(true, ordering: .relaxed) }

        func train(onEvent: (Event) -> Void) throws(T5Error) -> T5Model {
            try OutputDirectory.requireNew(output, option: "output") { _ in false }
            let loaded = try T5Model(directory: model, weights: .f32, packWeights: false)
            let specs = T5Parameters.specs(for: loaded.config, separateLMHead: loaded.hasSeparateLMHead, decoder: loaded.hasDecoder)
            let frozen = try Freezing.frozenKeys(freeze, parameters: specs)
            let training = try TrainingData(tasks: try tasks(train, tokenizer: loaded.tokenizer))
            let validationData = validation.isEmpty ? nil : try TrainingData(tasks: try tasks(validation, tokenizer: loaded.tokenizer, validation: true))
            var objective: DistillationObjective?
            if let teacher {
                let teacherModel: T5Model
                do {
                    teacherModel = try T5Model(directory: teacher.directory, weights: teacher.weights)
                } catch {
                    throw .invalidOption(name: "Distiller.teacher", reason: "\(teacher.directory.path) is not a model to distill from: \(error)")
                }
                let distillation = try DistillationObjective(
                    teacher: teacherModel, alpha: teacher.alpha, temperature: teacher.temperature,
                    labelSmoothing: options.labelSmoothing, teacherName: teacher.directory.standardizedFileURL.path,
                    hiddenWeight: teacher.hiddenWeight)
                try distillation.requireCompatible(student: loaded)
                objective = distillation
            }
            let trainer = try Trainer(model: loaded, training: training, validation: validationData, options: options,
                                      frozen: frozen, files: try .copying(from: model, config: loaded.config), objective: objective)
            try trainer.run(output: output, onStep: { report in
                onEvent(.step(report))
                return self.cancelled.load(ordering: .relaxed) ? .stop : .continue
            }, onEvaluation: { onEvent(.evaluation($0)) })
            return trainer.model
        }

        /// `validation`: a span-corruption task is corrupted once and held in memory, as evaluation needs.
        private func tasks(_ tasks: [Task], tokenizer: any Tokenizer, validation: Bool = false) throws(T5Error) -> [TaskData] {
            var data: [TaskData] = []
            for task in tasks {
                switch task {
                case .file(let path, let prefix):
                    data.append(try TaskData(source: TaskSource(prefix: prefix, path: path), tokenizer: tokenizer,
                                             maxInputTokens: maxInputTokens, maxTargetTokens: maxTargetTokens))
                case .examples(let name, let examples, let prefix):
                    data.append(TaskData(name: name, prefix: prefix, examples: examples, tokenizer: tokenizer,
                                         maxInputTokens: maxInputTokens, maxTargetTokens: maxTargetTokens))
                case .spanCorruption(let files, let inputLength, let noiseDensity, let meanSpanLength, let onePerLine):
                    let corruption = try SpanCorruption(inputLength: inputLength, noiseDensity: noiseDensity,
                                                        meanSpanLength: meanSpanLength, sentinelCount: tokenizer.sentinelCount)
                    let corpus = try SpanCorruptionCorpus(files: files, onePerLine: onePerLine, corruption: corruption, tokenizer: tokenizer)
                    if validation {
                        data.append(TaskData(source: TaskSource(path: corpus.name), examples: try corpus.validationExamples(seed: options.seed)))
                    } else {
                        data.append(TaskData(corpus: corpus))
                    }
                }
            }
            return data
        }
    }
}
