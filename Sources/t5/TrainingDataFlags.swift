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
        try TrainingData(tasks: try trainingTasks(tokenizer: tokenizer), weights: try mixWeights())
    }

    func validation(tokenizer: any Tokenizer) throws(T5Error) -> TrainingData? {
        valid.isEmpty ? nil : try TrainingData(tasks: try loadTasks(valid, tokenizer: tokenizer))
    }

    /// The --train tasks, for a command that adds tasks of its own (finetune --pretrain-text) before mixing.
    func trainingTasks(tokenizer: any Tokenizer) throws(T5Error) -> [TaskData] {
        try loadTasks(train, tokenizer: tokenizer)
    }

    private func loadTasks(_ arguments: [String], tokenizer: any Tokenizer) throws(T5Error) -> [TaskData] {
        var tasks = [TaskData]()
        for argument in arguments {
            tasks.append(try TaskData(source: TaskSource.parse(argument), tokenizer: tokenizer,
                                      maxInputTokens: maxInputTokens, maxTargetTokens: maxTargetTokens))
        }
        return tasks
    }

    /// The --mix weights in --train order, or nil for examples-proportional mixing.
    func mixWeights() throws(T5Error) -> [Double]? {
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

    /// One note per task: examples, prefix, mixing rate, skipped lines and truncations (a span-corruption
    /// task of finetune --pretrain-text: its corpus line).
    func report(_ data: TrainingData, label: String) {
        for (task, rate) in zip(data.tasks, data.rates) {
            if let corpus = task.corpus {
                var line = TrainingSession.describe(corpus, label: label)
                if data.tasks.count > 1 { line += String(format: ", sampled %.1f%%", rate * 100) }
                note(line)
                continue
            }
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
