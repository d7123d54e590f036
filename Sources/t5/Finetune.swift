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

    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("Training data: FILE or 'PREFIX=FILE'; repeat to mix tasks.", valueName: "[PREFIX=]FILE"))
    var train: [String] = []
    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("Validation data: FILE or 'PREFIX=FILE'; repeatable.", valueName: "[PREFIX=]FILE"))
    var valid: [String] = []
    @Option(parsing: .unconditional, help: ArgumentHelp("Sampling weights of the --train tasks, comma-separated in --train order, or 'equal' (default: proportional to their sizes, T5's examples-proportional mixing).", valueName: "W1,W2,..."))
    var mix: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Output directory.", valueName: "DIR"))
    var out: String

    @OptionGroup var trainingFlags: TrainingFlags
    @Option(parsing: .unconditional, help: "Truncate inputs (prefix included) to N tokens; truncated inputs are counted and reported.") var maxInputTokens = 512
    @Option(parsing: .unconditional, help: "Truncate targets to N tokens (also the longest output with --eval-generate).") var maxTargetTokens = 128
    @OptionGroup var runtime: RuntimeOptions
    @Flag(help: "Print a JSON summary of the run on stdout.") var json = false

    func validate() throws {
        if train.isEmpty { throw ValidationError("give at least one --train FILE") }
        if let weights = modelOptions.weights, weights != .f32 {
            throw ValidationError("--weights \(weights.rawValue): training updates fp32 weights; convert the result afterwards (t5 convert)")
        }
        if maxInputTokens < 2 { throw invalidValue("--max-input-tokens", "must be at least 2 (a token and </s>), got \(maxInputTokens)") }
        if maxTargetTokens < 2 { throw invalidValue("--max-target-tokens", "must be at least 2 (a token and </s>), got \(maxTargetTokens)") }
        try checkWhileParsing { () throws(T5Error) in
            _ = try trainingFlags.options(evalMaxNewTokens: maxTargetTokens)
            _ = try mixWeights()
        }
        if trainingFlags.evalGenerate && valid.isEmpty { throw ValidationError("--eval-generate needs --valid data") }
        if trainingFlags.evalEvery != nil && valid.isEmpty { throw ValidationError("--eval-every needs --valid data") }
    }

    func run() async throws {
        runtime.apply()
        let options = try trainingFlags.options(evalMaxNewTokens: maxTargetTokens)
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

        let training = try TrainingData(tasks: try loadTasks(train, tokenizer: model.tokenizer), weights: try mixWeights())
        let validation = valid.isEmpty ? nil : try TrainingData(tasks: try loadTasks(valid, tokenizer: model.tokenizer))

        var files = try Checkpoint.ModelFiles.copying(from: modelDirectory, config: model.config)
        if let dropout { files.configUpdates["dropout_rate"] = .number(Double(dropout.description) ?? Double(dropout)) }
        if fromScratch { files.generationConfig = nil }

        // Everything that can fail on bad input happens before the first line of progress is printed.
        let trainer = hasCheckpoint
            ? try Trainer.resume(from: output, training: training, validation: validation, options: options, frozen: frozen, files: files)
            : try Trainer(model: model, training: training, validation: validation, options: options, frozen: frozen, files: files)
        if hasCheckpoint && trainer.isFinished {
            // Nothing to train: say so in one line (no data report), and leave metrics.jsonl and the
            // checkpoints as they are.
            let line = "\(out) already holds the finished run: step \(trainer.completedSteps)"
                + (trainer.completedSteps == trainer.totalSteps ? " of \(trainer.totalSteps)" : ", past the \(trainer.totalSteps) steps asked for")
                + "; nothing to do (more --steps or --epochs continue it)"
            if json {
                try printJSON(Summary(out: output.path, step: trainer.completedSteps, total_steps: trainer.totalSteps, finished: true,
                                      train_loss: nil, eval_loss: nil, eval_token_accuracy: nil, eval_exact_match: nil,
                                      elapsed_s: trainer.state.elapsedSeconds, skipped_steps: trainer.state.skippedSteps ?? 0, tokens_per_s: nil))
            } else {
                print(line)
            }
            return
        }
        report(training, label: "train")
        if let validation { report(validation, label: "valid") }
        if !frozen.isEmpty {
            let count = specs.filter { frozen.contains($0.key) }.reduce(0) { $0 + $1.shape.reduce(1, *) }
            note("frozen: \(frozen.count) of \(specs.count) tensors (\(count.formatted()) of \(model.parameterCount.formatted()) parameters)")
            if !model.hasSeparateLMHead && freeze.contains(where: { $0.split(separator: ",").contains("lm-head") }) {
                note("lm-head: this model's head is tied to the embedding, so shared.weight is frozen")
            }
        }
        if hasCheckpoint {
            note("resuming \(out) at step \(trainer.completedSteps) of \(trainer.totalSteps)")
        } else if resume {
            note("no checkpoint in \(out); starting a new run")
        }
        note("\(trainer.optimizer.summary); \(trainer.totalSteps) steps of \(options.batchSize)×\(options.gradientAccumulation) examples, dropout \(trainer.dropoutRate)")

        // Ctrl-C or SIGTERM now stops after the current step, which is then saved; a second one exits at
        // once, which is safe: checkpoints are only ever replaced atomically.
        Signals.shared.deferExit()
        let display = ProgressDisplay(enabled: !runtime.quiet)
        var lastStep: StepReport?
        var lastEvaluation: EvaluationReport?
        try trainer.run(output: output, pauseAt: trainingFlags.pauseAt, onStep: { step in
            if let reason = step.skipped {
                display.finish()
                note("step \(step.step) skipped: \(reason) (\(trainer.state.skippedSteps ?? 0) of at most \(trainingFlags.skipNonfiniteSteps))")
            } else {
                lastStep = step
            }
            display.show(step)
            if Signals.shared.received != nil {
                display.finish()
                note("interrupted: saving step \(step.step)")
                return .stop
            }
            return .continue
        }, onEvaluation: { evaluation in
            lastEvaluation = evaluation
            display.finish()
            note(Self.describe(evaluation))
        })
        display.finish()
        let finished = trainer.isFinished
        if json {
            try printJSON(Summary(out: output.path, step: trainer.completedSteps, total_steps: trainer.totalSteps, finished: finished,
                              train_loss: lastStep?.loss, eval_loss: lastEvaluation?.loss,
                              eval_token_accuracy: lastEvaluation?.tokenAccuracy, eval_exact_match: lastEvaluation?.exactMatch,
                              elapsed_s: trainer.state.elapsedSeconds, skipped_steps: trainer.state.skippedSteps ?? 0,
                              tokens_per_s: trainer.state.elapsedSeconds > 0 ? Double(trainer.state.tokensSeen) / trainer.state.elapsedSeconds : nil))
        } else {
            let paused = trainingFlags.pauseAt.map { trainer.completedSteps >= $0 } ?? false
            print("saved \(output.path) at step \(trainer.completedSteps) of \(trainer.totalSteps)"
                  + (finished ? "" : paused ? " (paused at --pause-at; continue with --resume)" : " (interrupted; continue with --resume)"))
        }
        // After a signal, T5Command.main exits with 128 + its number.
    }

    struct Summary: Encodable {
        let out: String
        let step: Int
        let total_steps: Int
        let finished: Bool
        let train_loss: Double?
        let eval_loss: Double?
        let eval_token_accuracy: Double?
        let eval_exact_match: Double?
        let elapsed_s: Double
        let skipped_steps: Int
        let tokens_per_s: Double?
    }

    private func loadTasks(_ arguments: [String], tokenizer: any Tokenizer) throws(T5Error) -> [TaskData] {
        var tasks = [TaskData]()
        for argument in arguments {
            tasks.append(try TaskData(source: TaskSource.parse(argument), tokenizer: tokenizer,
                                      maxInputTokens: maxInputTokens, maxTargetTokens: maxTargetTokens))
        }
        return tasks
    }

    private func mixWeights() throws(T5Error) -> [Double]? {
        guard let mix else { return nil }
        if mix == "equal" { return Array(repeating: 1, count: train.count) }
        var weights = [Double]()
        for part in mix.split(separator: ",", omittingEmptySubsequences: false) {
            guard let w = Double(part.trimmingCharacters(in: .whitespaces)) else {
                throw .invalidOption(name: "--mix", reason: "'\(part)' is not a number (give W1,W2,... in --train order, or 'equal')")
            }
            weights.append(w)
        }
        return weights
    }

    private func report(_ data: TrainingData, label: String) {
        for (task, rate) in zip(data.tasks, data.rates) {
            var line = "\(label) \(task.source.path): \(task.examples.count) examples"
            if !task.source.prefix.isEmpty { line += ", prefix \(task.source.prefix.debugDescription)" }
            if data.tasks.count > 1 && label == "train" { line += String(format: ", sampled %.1f%%", rate * 100) }
            if task.emptyLines > 0 { line += ", \(task.emptyLines) empty line\(task.emptyLines == 1 ? "" : "s") skipped" }
            if task.truncatedInputs.examples > 0 {
                line += ", \(task.truncatedInputs.examples) input\(task.truncatedInputs.examples == 1 ? "" : "s") truncated to --max-input-tokens \(maxInputTokens) (\(task.truncatedInputs.tokens) tokens cut)"
            }
            if task.truncatedTargets.examples > 0 {
                line += ", \(task.truncatedTargets.examples) target\(task.truncatedTargets.examples == 1 ? "" : "s") truncated to --max-target-tokens \(maxTargetTokens) (\(task.truncatedTargets.tokens) tokens cut)"
            }
            note(line)
        }
    }

    static func describe(_ e: EvaluationReport) -> String {
        var line = String(format: "eval step %d: loss %.4f, token accuracy %.2f%%", e.step, e.loss, e.tokenAccuracy * 100)
        if let em = e.exactMatch { line += String(format: ", exact match %.2f%%", em * 100) }
        if e.tasks.count > 1 {
            line += " (" + e.tasks.map { t in
                "\(t.name): " + (t.exactMatch.map { String(format: "EM %.1f%%", $0 * 100) } ?? String(format: "loss %.3f", t.loss))
            }.joined(separator: ", ") + ")"
        }
        return line
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
