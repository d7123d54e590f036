import ArgumentParser
import T5

struct Score: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Log-probability of a target given an input (teacher forcing, </s> appended to the target).")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var inputs: InputFileOptions
    @Option(parsing: .unconditional, help: "Input text (with --target: one pair; without both, pairs are read from --input-file or stdin as JSON Lines).") var input: String?
    @Option(parsing: .unconditional, help: "Target text.") var target: String?
    @Option(parsing: .unconditional, help: "Refuse inputs longer than N tokens.") var maxInputTokens: Int?
    @Option(parsing: .unconditional, help: "Cut inputs longer than N tokens to their first N-1 and </s>, as the tokenizer's truncation does.") var truncate: Int?
    @Flag(help: "Print {\"ids\", \"logprobs\", \"total\"} as JSON (for pairs read from a file: with \"input\", \"target\" and the line's other fields).") var json = false

    struct Pair: Encodable {
        let input: String
        let target: String
        let ids: [Int]
        let logprobs: [Float]
        let total: Float
    }

    func validate() throws {
        if (input == nil) != (target == nil) { throw ValidationError("give --input and --target together (or neither, to read JSON Lines pairs)") }
        if input != nil && inputs.inputFile != nil { throw ValidationError("give either --input/--target or --input-file, not both") }
        if let m = maxInputTokens, m < 1 { throw invalidValue("--max-input-tokens", "must be at least 1, got \(m)") }
        if let n = truncate, n < 2 { throw invalidValue("--truncate", "must be at least 2 (a token and </s>), got \(n)") }
    }

    func run() async throws {
        runtime.apply()
        let model = try modelOptions.load()
        if let input, let target {
            warnLongInputs([input], model: model, limit: maxInputTokens ?? truncate)
            let scored = try model.score(input: input, target: target, maxInputTokens: maxInputTokens, truncateTo: truncate)
            if json {
                try printJSON(scored)
            } else {
                let pieces = model.tokenizer.pieces(scored.ids)
                for (piece, lp) in zip(pieces, scored.logprobs) { print("\(piece)\t\(lp)") }
                print("total\t\(scored.total)")
            }
            return
        }
        try forEachInputBatch(texts: [], file: inputs, needsTarget: true) { records in
            for record in records {
                let target = record.target ?? ""
                let scored = try model.score(input: record.text, target: target, maxInputTokens: maxInputTokens, truncateTo: truncate)
                if json {
                    try printJSON(Pair(input: record.text, target: target, ids: scored.ids, logprobs: scored.logprobs, total: scored.total), extra: record.extra)
                } else {
                    print(scored.total)
                }
            }
        }
    }
}
