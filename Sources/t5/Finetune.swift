import ArgumentParser
import Foundation
import T5

struct Finetune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a model on input/target pairs and save it in the Hugging Face layout.",
        discussion: """
            Data files are JSON Lines ({"input": ..., "target": ...}) or TSV (input<TAB>target); empty lines are \
            skipped. Give several --train 'PREFIX=FILE' to train on a mixture of tasks: PREFIX (e.g. 'summarize: ', \
            quoted, with its space) is prepended to every input of FILE, and tasks are sampled in proportion to their \
            sizes unless --mix sets the weights.

            OUT receives config.json, model.safetensors, spiece.model and generation_config.json (loadable by \
            `t5 generate --model OUT` and by transformers' T5ForConditionalGeneration.from_pretrained), \
            checkpoint-N/ with the optimizer state that --resume continues from, and metrics.jsonl. \
            Checkpoints are written atomically; Ctrl-C stops after the current step and saves.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Flag(help: "Start from randomly initialized weights (transformers' T5 initialization, seeded by --seed) instead of --model's; --model then needs only config.json and spiece.model.")
    var fromScratch = false

    @OptionGroup var data: TrainingDataFlags
    @Option(parsing: .unconditional, help: ArgumentHelp("Output directory.", valueName: "DIR"))
    var out: String

    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("Also train on T5's span corruption of this text (.txt, .jsonl, either .gz; see `t5 pretrain`), mixed with the --train tasks; the corrupted inputs are --max-input-tokens long. Repeatable: the files form one corpus.", valueName: "FILE"))
    var pretrainText: [String] = []
    @Option(parsing: .unconditional, help: ArgumentHelp("Rate at which --pretrain-text examples are sampled, in (0, 1); the --train tasks share the rest in their --mix proportions (default: examples-proportional, a corpus counting its chunks).", valueName: "W"))
    var pretrainWeight: Double?
    @OptionGroup var spanCorruption: SpanCorruptionFlags

    @OptionGroup var trainingFlags: TrainingFlags
    @OptionGroup var runtime: RuntimeOptions
    @Flag(help: "Print a JSON summary of the run on stdout.") var json = false

    func validate() throws {
        if let weights = modelOptions.weights, weights != .f32 {
            throw ValidationError("--weights \(weights.rawValue): training updates fp32 weights; convert the result afterwards (t5 convert)")
        }
        if let w = pretrainWeight {
            if pretrainText.isEmpty { throw ValidationError("--pretrain-weight needs --pretrain-text") }
            if !(w > 0 && w < 1) { throw invalidValue("--pretrain-weight", "must be in (0, 1), got \(w)") }
        }
        try data.validate(with: trainingFlags)
    }

    func run() async throws {
        runtime.apply()
        let options = try trainingFlags.options(evalMaxNewTokens: data.maxTargetTokens)
        let session = try TrainingSession(out: out, flags: trainingFlags, runtime: runtime, json: json)
        let (model, modelDirectory) = try session.loadModel(modelOptions, fromScratch: fromScratch)
        let frozen = try session.frozenKeys(model)

        var tasks = try data.trainingTasks(tokenizer: model.tokenizer)
        var weights = try data.mixWeights()
        if !pretrainText.isEmpty {
            let corruption = try pretrainCorruption(tokenizer: model.tokenizer)
            let corpus = try SpanCorruptionCorpus(files: pretrainText, onePerLine: spanCorruption.oneDocumentPerLine,
                                                  corruption: corruption, tokenizer: model.tokenizer)
            if let w = pretrainWeight {
                // The corpus at rate W; the supervised tasks share the rest in their own proportions.
                let own = weights ?? tasks.map { Double($0.count) }
                let total = own.reduce(0, +)
                weights = own.map { $0 / total * (1 - w) } + [w]
            } else if let given = weights {
                weights = given + [Double(corpus.summary.chunks)]
            }
            tasks.append(TaskData(corpus: corpus))
        }
        let training = try TrainingData(tasks: tasks, weights: weights)
        let validation = try data.validation(tokenizer: model.tokenizer)

        try session.train(model: model, modelDirectory: modelDirectory, fromScratch: fromScratch, training: training,
                          validation: validation, options: options, frozen: frozen) {
            data.report(training, label: "train")
            if let validation { data.report(validation, label: "valid") }
        }
    }

    /// The span corruption of --pretrain-text, whose inputs are --max-input-tokens long (named so in errors).
    private func pretrainCorruption(tokenizer: any Tokenizer) throws(T5Error) -> SpanCorruption {
        let result = Result { () throws(T5Error) in try spanCorruption.corruption(inputLength: data.maxInputTokens, tokenizer: tokenizer) }
        guard case .failure(let error) = result else { return try result.get() }
        if case .invalidOption(let name, let reason) = error, name == "SpanCorruption.inputLength" || name == "Tokenizer.sentinelCount" {
            throw .invalidOption(name: "--max-input-tokens", reason: reason)
        }
        throw error
    }
}

/// Progress on stderr: a live line redrawn in place on a terminal; otherwise a plain line every
/// 5% of the run, so logs stay short.
final class ProgressDisplay {
    private var bar = ProgressBar()
    private let enabled: Bool
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private var live = false

    init(enabled: Bool) {
        self.enabled = enabled
    }

    func show(_ step: StepReport) {
        guard enabled else { return }
        let line = bar.update(step)
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
            live = true
        } else if step.step % max(1, step.totalSteps / 20) == 0 || step.step == step.totalSteps || step.step == 1 {
            printError(line)
        }
    }

    /// Ends the live line so other messages start on their own line.
    func finish() {
        if live {
            FileHandle.standardError.write(Data("\n".utf8))
            live = false
        }
    }
}

/// An informational line on stderr (errors alone carry the `t5:` prefix).
func note(_ line: String) {
    if !quietMode { printError(line) }
}
