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

    @OptionGroup var trainingFlags: TrainingFlags
    @OptionGroup var runtime: RuntimeOptions
    @Flag(help: "Print a JSON summary of the run on stdout.") var json = false

    func validate() throws {
        if let weights = modelOptions.weights, weights != .f32 {
            throw ValidationError("--weights \(weights.rawValue): training updates fp32 weights; convert the result afterwards (t5 convert)")
        }
        try data.validate(with: trainingFlags)
    }

    func run() async throws {
        runtime.apply()
        let options = try trainingFlags.options(evalMaxNewTokens: data.maxTargetTokens)
        let modelDirectory = try modelOptions.directory()
        let output = URL(fileURLWithPath: out)
        let hasCheckpoint = Checkpoint.latest(in: output) != nil
        let resume = trainingFlags.resume, seed = trainingFlags.seed, freeze = trainingFlags.freeze, dropout = trainingFlags.dropout
        if hasCheckpoint && !resume {
            throw T5Error.invalidOption(name: "--out", reason: "\(out) already holds a training run; pass --resume to continue it, or choose another directory")
        }
        if !hasCheckpoint {
            // A new run writes config.json, model.safetensors, ... into OUT: never beside files we did not
            // write. A run that stopped before its first checkpoint leaves only its temporaries and, when
            // continued with --resume, its metrics log.
            try OutputDirectory.requireNew(output, option: "--out") { name in
                Checkpoint.isTemporary(name) || (resume && name == "metrics.jsonl")
            }
        }

        // The model (or, from scratch, its config and tokenizer).
        let model: T5Model
        if fromScratch {
            let config = try T5Config.load(from: modelDirectory.appendingPathComponent("config.json"))
            let tokenizer = try TokenizerDirectory.load(modelDirectory)
            model = try T5Model.randomlyInitialized(config: config, tokenizer: tokenizer,
                                                separateLMHead: config.tieWordEmbeddings == false, seed: seed)
        } else {
            model = try T5Model(directory: modelDirectory, weights: .f32, packWeights: false)
        }
        let specs = T5Parameters.specs(for: model.config, separateLMHead: model.hasSeparateLMHead)
        let frozen = try Freezing.frozenKeys(freeze, parameters: specs)
        if frozen.count == specs.count {
            throw T5Error.invalidOption(name: "--freeze", reason: "every tensor is frozen; nothing would train")
        }

        let training = try data.training(tokenizer: model.tokenizer)
        let validation = try data.validation(tokenizer: model.tokenizer)

        var files = try Checkpoint.ModelFiles.copying(from: modelDirectory, config: model.config)
        if let dropout { files.configUpdates["dropout_rate"] = .number(Double(dropout.description) ?? Double(dropout)) }
        if fromScratch { files.generationConfig = nil }

        // Everything that can fail on bad input happens before the first line of progress is printed.
        let trainer = hasCheckpoint
            ? try Trainer.resume(from: output, training: training, validation: validation, options: options, frozen: frozen, files: files)
            : try Trainer(model: model, training: training, validation: validation, options: options, frozen: frozen, files: files)
        let run = TrainingRun(out: out, json: json, quiet: runtime.quiet, skipNonfiniteSteps: trainingFlags.skipNonfiniteSteps)
        if try run.reportFinished(trainer, resumed: hasCheckpoint) { return }
        data.report(training, label: "train")
        if let validation { data.report(validation, label: "valid") }
        TrainingRun.reportFrozen(frozen, specs: specs, model: model, freeze: freeze)
        try run.train(trainer, resumed: hasCheckpoint, resumeAsked: resume)
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
