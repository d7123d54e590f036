import ArgumentParser
import T5

struct Score: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Log-probability of a target given an input (teacher forcing, </s> appended to the target).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Input text.") var input: String
    @Option(help: "Target text.") var target: String
    @Option(help: "Refuse inputs longer than N tokens.") var maxInputTokens: Int?
    @Flag(help: "Print {\"ids\", \"logprobs\", \"total\"} as JSON.") var json = false

    func run() async throws {
        if let m = maxInputTokens, m < 1 { throw T5Error.invalidOption(name: "--max-input-tokens", reason: "must be at least 1, got \(m)") }
        let model = try modelOptions.load()
        warnLongInputs([input], model: model, limit: maxInputTokens)
        let scored = try model.score(input: input, target: target, maxInputTokens: maxInputTokens)
        if json {
            try printJSON(scored)
        } else {
            let pieces = model.tokenizer.pieces(scored.ids)
            for (piece, lp) in zip(pieces, scored.logprobs) { print("\(piece)\t\(lp)") }
            print("total\t\(scored.total)")
        }
    }
}
