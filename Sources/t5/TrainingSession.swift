import ArgumentParser
import Foundation
import T5

/// What every training command (finetune, pretrain, distill) does around its data: checks the output
/// directory, loads or initializes the model, resolves --freeze, then creates or resumes the `Trainer`, reports,
/// trains with progress and Ctrl-C handling, and prints the summary. One copy, so the commands behave alike; a
/// command that builds its own `Trainer` (distill: a distillation objective with its teacher) calls `run`.
struct TrainingSession {
    let out: String
    let output: URL
    let flags: TrainingFlags
    let runtime: RuntimeOptions
    let json: Bool
    /// OUT already holds a run's checkpoint (and --resume was given).
    let hasCheckpoint: Bool

    /// Checks OUT: a directory with a run needs --resume; a new run never writes beside files we did not write.
    /// `ownFiles` names the files a command itself leaves in OUT before its first checkpoint (distill: the
    /// teacher's targets and the copied student).
    init(out: String, flags: TrainingFlags, runtime: RuntimeOptions, json: Bool, ownFiles: (String) -> Bool = { _ in false }) throws {
        self.out = out
        output = URL(fileURLWithPath: out)
        self.flags = flags
        self.runtime = runtime
        self.json = json
        hasCheckpoint = Checkpoint.latest(in: output) != nil
        let resume = flags.resume
        if hasCheckpoint && !resume {
            throw T5Error.invalidOption(name: "--out", reason: "\(out) already holds a training run; pass --resume to continue it, or choose another directory")
        }
        if !hasCheckpoint {
            // A run that stopped before its first checkpoint leaves only its temporaries and, when continued
            // with --resume, its metrics log.
            try OutputDirectory.requireNew(output, option: "--out") { name in
                Checkpoint.isTemporary(name) || (resume && name == "metrics.jsonl") || ownFiles(name)
            }
        }
    }

    /// The model of --model, or with `fromScratch` one initialized from its config.json and tokenizer.
    func loadModel(_ options: ModelOptions, fromScratch: Bool) throws -> (T5Model, URL) {
        let directory = try options.directory()
        if fromScratch {
            let config = try T5Config.load(from: directory.appendingPathComponent("config.json"))
            let tokenizer = try TokenizerDirectory.load(directory)
            let model = try T5Model.randomlyInitialized(config: config, tokenizer: tokenizer,
                                                        separateLMHead: config.tieWordEmbeddings == false, seed: flags.seed)
            return (model, directory)
        }
        return (try T5Model(directory: directory, weights: .f32, packWeights: false), directory)
    }

    /// The tensors --freeze selects; refuses freezing everything.
    func frozenKeys(_ model: T5Model) throws -> Set<String> {
        let specs = T5Parameters.specs(for: model.config, separateLMHead: model.hasSeparateLMHead)
        let frozen = try Freezing.frozenKeys(flags.freeze, parameters: specs)
        if frozen.count == specs.count {
            throw T5Error.invalidOption(name: "--freeze", reason: "every tensor is frozen; nothing would train")
        }
        return frozen
    }

    /// `files` with --dropout recorded in the saved config.json.
    func applyingDropout(to files: ModelDirectory) -> ModelDirectory {
        var files = files
        if let dropout = flags.dropout { files.configUpdates["dropout_rate"] = .number(Double(dropout.description) ?? Double(dropout)) }
        return files
    }

    /// Creates (or resumes) the trainer and trains to the end or a signal; `report` prints the data lines.
    func train(model: T5Model, modelDirectory: URL, fromScratch: Bool, training: TrainingData, validation: TrainingData?,
               options: TrainingOptions, frozen: Set<String>, report: () throws -> Void) throws {
        var files = applyingDropout(to: try ModelDirectory.copying(from: modelDirectory, config: model.config))
        if fromScratch { files.generationConfig = nil }

        // Everything that can fail on bad input happens before the first line of progress is printed.
        let trainer = hasCheckpoint
            ? try Trainer.resume(from: output, training: training, validation: validation, options: options, frozen: frozen, files: files)
            : try Trainer(model: model, training: training, validation: validation, options: options, frozen: frozen, files: files)
        try run(trainer, model: model, frozen: frozen, report: report)
    }

    /// Runs a created (or resumed) `trainer` of `model` to the end or a signal and prints the summary. A resumed
    /// run that is already finished gets one line and nothing else; otherwise `report` first prints (and may
    /// write) what the command says before training, then come the frozen, resume and optimizer notes.
    func run(_ trainer: Trainer, model: T5Model, frozen: Set<String>, report: () throws -> Void) throws {
        let options = trainer.options
        if hasCheckpoint && trainer.isFinished {
            // Nothing to train: say so in one line (no data report), and leave metrics.jsonl and the
            // checkpoints as they are.
            let line = "\(out) already holds the finished run: step \(trainer.completedSteps)"
                + (trainer.completedSteps == trainer.totalSteps ? " of \(trainer.totalSteps)" : ", past the \(trainer.totalSteps) steps asked for")
                + "; nothing to do (more --steps or --epochs continue it)"
            if json {
                // The figures the run ended with, from its log (the run's last training step and evaluation),
                // so that a script asking again gets the same summary, not nulls.
                let log = try? RunMetrics(contentsOf: output.appendingPathComponent("metrics.jsonl"))
                let lastStep = log?.steps.last { $0.step <= trainer.completedSteps && $0.loss != nil }
                let lastEvaluation = log?.evaluations.last { $0.step <= trainer.completedSteps }
                try printSummary(trainer, finished: true, trainLoss: lastStep?.loss, evalLoss: lastEvaluation?.loss,
                                 evalTokenAccuracy: lastEvaluation?.tokenAccuracy, evalExactMatch: lastEvaluation?.exactMatch)
            } else {
                print(line)
            }
            return
        }
        try report()
        if !frozen.isEmpty {
            let specs = T5Parameters.specs(for: model.config, separateLMHead: model.hasSeparateLMHead)
            let count = specs.filter { frozen.contains($0.key) }.reduce(0) { $0 + $1.shape.reduce(1, *) }
            note("frozen: \(frozen.count) of \(specs.count) tensors (\(count.formatted()) of \(model.parameterCount.formatted()) parameters)")
            if !model.hasSeparateLMHead && flags.freeze.contains(where: { $0.split(separator: ",").contains("lm-head") }) {
                note("lm-head: this model's head is tied to the embedding, so shared.weight is frozen")
            }
        }
        if hasCheckpoint {
            note("resuming \(out) at step \(trainer.completedSteps) of \(trainer.totalSteps)")
        } else if flags.resume {
            note("no checkpoint in \(out); starting a new run")
        }
        note("\(trainer.optimizer.summary); \(trainer.totalSteps) steps of \(options.batchSize)×\(options.gradientAccumulation) examples, dropout \(trainer.dropoutRate)")

        // Ctrl-C or SIGTERM now stops after the current step, which is then saved; a second one exits at
        // once, which is safe: checkpoints are only ever replaced atomically.
        Signals.shared.deferExit()
        let display = ProgressDisplay(enabled: !runtime.quiet)
        var lastStep: StepReport?
        var lastEvaluation: EvaluationReport?
        let skipLimit = flags.skipNonfiniteSteps
        try trainer.run(output: output, pauseAt: flags.pauseAt, onStep: { step in
            if let reason = step.skipped {
                display.finish()
                note("step \(step.step) skipped: \(reason) (\(trainer.state.skippedSteps ?? 0) of at most \(skipLimit))")
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
            try printSummary(trainer, finished: finished, trainLoss: lastStep?.loss, evalLoss: lastEvaluation?.loss,
                             evalTokenAccuracy: lastEvaluation?.tokenAccuracy, evalExactMatch: lastEvaluation?.exactMatch)
        } else {
            let paused = flags.pauseAt.map { trainer.completedSteps >= $0 } ?? false
            print("saved \(output.path) at step \(trainer.completedSteps) of \(trainer.totalSteps)"
                  + (finished ? "" : paused ? " (paused at --pause-at; continue with --resume)" : " (interrupted; continue with --resume)"))
        }
        // After a signal, T5Command.main exits with 128 + its number.
    }

    /// The `--json` summary of a run: where it stands and the figures it ended with.
    private func printSummary(_ trainer: Trainer, finished: Bool, trainLoss: Double?, evalLoss: Double?,
                              evalTokenAccuracy: Double?, evalExactMatch: Double?) throws {
        let elapsed = trainer.state.elapsedSeconds
        try printJSON(Summary(out: output.path, step: trainer.completedSteps, total_steps: trainer.totalSteps, finished: finished,
                              train_loss: trainLoss, eval_loss: evalLoss, eval_token_accuracy: evalTokenAccuracy,
                              eval_exact_match: evalExactMatch, elapsed_s: elapsed, skipped_steps: trainer.state.skippedSteps ?? 0,
                              tokens_per_s: elapsed > 0 ? Double(trainer.state.tokensSeen) / elapsed : nil))
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

    /// The data line of a span-corruption corpus.
    static func describe(_ corpus: SpanCorruptionCorpus, label: String) -> String {
        let c = corpus.corruption
        return "\(label) \(corpus.name): \(corpus.summary.documents) documents, \(corpus.summary.tokens) tokens, "
            + "\(corpus.summary.chunks) chunks of \(c.rawLength) (inputs \(c.inputLength), targets \(c.targetLength), "
            + "\(c.noiseTokens) noise tokens in \(c.noiseSpans) spans)"
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
