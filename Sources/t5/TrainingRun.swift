import ArgumentParser
import Foundation
import T5

/// The data flags of every command that trains on input/target pairs (finetune, distill): the files, their
/// mixing, and the truncation lengths. One definition, so the commands agree on names, checks and reports.
struct TrainingDataFlags: ParsableArguments {
    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("Training data: FILE or 'PREFIX=FILE'; repeat to mix tasks.", valueName: "[PREFIX=]FILE"))
    var train: [String] = []
    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("Validation data: FILE or 'PREFIX=FILE'; repeatable.", valueName: "[PREFIX=]FILE"))
    var valid: [String] = []
    @Option(parsing: .unconditional, help: ArgumentHelp("Sampling weights of the --train tasks, comma-separated in --train order, or 'equal' (default: proportional to their sizes, T5's examples-proportional mixing).", valueName: "W1,W2,..."))
    var mix: String?
    @Option(parsing: .unconditional, help: "Truncate inputs (prefix included) to N tokens; truncated inputs are counted and reported.") var maxInputTokens = 512
    @Option(parsing: .unconditional, help: "Truncate targets to N tokens (also the longest output with --eval-generate).") var maxTargetTokens = 128

    func validate() throws {
        if train.isEmpty { throw ValidationError("give at least one --train FILE") }
        if maxInputTokens < 2 { throw invalidValue("--max-input-tokens", "must be at least 2 (a token and </s>), got \(maxInputTokens)") }
        if maxTargetTokens < 2 { throw invalidValue("--max-target-tokens", "must be at least 2 (a token and </s>), got \(maxTargetTokens)") }
        try checkWhileParsing { () throws(T5Error) in _ = try mixWeights() }
    }

    /// The checks that need the training flags too.
    func validate(with flags: TrainingFlags) throws {
        try checkWhileParsing { () throws(T5Error) in _ = try flags.options(evalMaxNewTokens: maxTargetTokens) }
        if flags.evalGenerate && valid.isEmpty { throw ValidationError("--eval-generate needs --valid data") }
        if flags.evalEvery != nil && valid.isEmpty { throw ValidationError("--eval-every needs --valid data") }
    }

    func training(tokenizer: any Tokenizer) throws(T5Error) -> TrainingData {
        try TrainingData(tasks: try loadTasks(train, tokenizer: tokenizer), weights: try mixWeights())
    }

    func validation(tokenizer: any Tokenizer) throws(T5Error) -> TrainingData? {
        valid.isEmpty ? nil : try TrainingData(tasks: try loadTasks(valid, tokenizer: tokenizer))
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

    /// One note per task: examples, prefix, mixing rate, skipped lines and truncations.
    func report(_ data: TrainingData, label: String) {
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
}

/// What every training command does once its trainer is built: say what the run is, train with progress,
/// evaluations and checkpoints (Ctrl-C saves), and print the summary. `finetune` and `distill` share it.
struct TrainingRun {
    let out: String
    let json: Bool
    let quiet: Bool
    let skipNonfiniteSteps: Int

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

    /// Prints the one line of a resumed run that is already finished and returns true; false otherwise.
    func reportFinished(_ trainer: Trainer, resumed: Bool) throws -> Bool {
        guard resumed && trainer.isFinished else { return false }
        // Nothing to train: say so in one line (no data report), and leave metrics.jsonl and the
        // checkpoints as they are.
        let line = "\(out) already holds the finished run: step \(trainer.completedSteps)"
            + (trainer.completedSteps == trainer.totalSteps ? " of \(trainer.totalSteps)" : ", past the \(trainer.totalSteps) steps asked for")
            + "; nothing to do (more --steps or --epochs continue it)"
        if json {
            try printJSON(Summary(out: URL(fileURLWithPath: out).path, step: trainer.completedSteps, total_steps: trainer.totalSteps, finished: true,
                                  train_loss: nil, eval_loss: nil, eval_token_accuracy: nil, eval_exact_match: nil,
                                  elapsed_s: trainer.state.elapsedSeconds, skipped_steps: trainer.state.skippedSteps ?? 0, tokens_per_s: nil))
        } else {
            print(line)
        }
        return true
    }

    /// The resume and optimizer notes, then the run to its end (or a signal), then the summary.
    func train(_ trainer: Trainer, resumed: Bool, resumeAsked: Bool) throws {
        let output = URL(fileURLWithPath: out)
        let options = trainer.options
        if resumed {
            note("resuming \(out) at step \(trainer.completedSteps) of \(trainer.totalSteps)")
        } else if resumeAsked {
            note("no checkpoint in \(out); starting a new run")
        }
        note("\(trainer.optimizer.summary); \(trainer.totalSteps) steps of \(options.batchSize)×\(options.gradientAccumulation) examples, dropout \(trainer.dropoutRate)")

        // Ctrl-C or SIGTERM now stops after the current step, which is then saved; a second one exits at
        // once, which is safe: checkpoints are only ever replaced atomically.
        Signals.shared.deferExit()
        let display = ProgressDisplay(enabled: !quiet)
        var lastStep: StepReport?
        var lastEvaluation: EvaluationReport?
        try trainer.run(output: output, onStep: { step in
            if let reason = step.skipped {
                display.finish()
                note("step \(step.step) skipped: \(reason) (\(trainer.state.skippedSteps ?? 0) of at most \(skipNonfiniteSteps))")
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
            print("saved \(output.path) at step \(trainer.completedSteps) of \(trainer.totalSteps)" + (finished ? "" : " (interrupted; continue with --resume)"))
        }
        // After a signal, T5Command.main exits with 128 + its number.
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

    /// The frozen-tensor notes of a run about to start.
    static func reportFrozen(_ frozen: Set<String>, specs: [ParameterSpec], model: T5Model, freeze: [String]) {
        guard !frozen.isEmpty else { return }
        let count = specs.filter { frozen.contains($0.key) }.reduce(0) { $0 + $1.shape.reduce(1, *) }
        note("frozen: \(frozen.count) of \(specs.count) tensors (\(count.formatted()) of \(model.parameterCount.formatted()) parameters)")
        if !model.hasSeparateLMHead && freeze.contains(where: { $0.split(separator: ",").contains("lm-head") }) {
            note("lm-head: this model's head is tied to the embedding, so shared.weight is frozen")
        }
    }
}
