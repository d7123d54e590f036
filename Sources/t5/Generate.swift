import ArgumentParser
import Foundation
import T5

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text for each input.",
        discussion: "Inputs come from TEXT arguments, --input-file (one per line) or stdin (one per line).")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var decoding: DecodingOptions
    @Option(help: "Read inputs from this file, one per line.") var inputFile: String?
    @Flag(help: "Print one JSON object per input: {\"input\", \"outputs\": [{\"text\", \"ids\", \"score\"}]}.") var json = false
    @Argument(help: "Input text; several arguments are joined with spaces into one input.") var text: [String] = []

    struct Record: Encodable {
        let input: String
        let outputs: [GeneratedSequence]
    }

    func validate() throws {
        if inputFile != nil && !text.isEmpty { throw ValidationError("give either --input-file or TEXT, not both") }
    }

    func run() async throws {
        let inputs = try readInputs()
        let model = try modelOptions.load()
        let options = try decoding.generationOptions(for: model)
        warnLongInputs(inputs, model: model, limit: options.maxInputTokens)

        // A single input shown to a person streams token by token.
        if inputs.count == 1 && !json && options.numBeams == 1 && options.numReturnSequences == 1 {
            for try await token in model.stream(inputs[0], options: options) {
                FileHandle.standardOutput.write(Data(token.text.utf8))
            }
            print()
            return
        }
        // Batches of inputs in one call (padded), in chunks so memory stays bounded.
        let chunk = 32
        for start in stride(from: 0, to: inputs.count, by: chunk) {
            let part = Array(inputs[start..<min(start + chunk, inputs.count)])
            let results = try model.generate(part, options: options)
            for (input, outputs) in zip(part, results) {
                if json {
                    try printJSON(Record(input: input, outputs: outputs))
                } else {
                    for output in outputs { print(output.text) }
                }
            }
        }
    }

    private func readInputs() throws(T5Error) -> [String] {
        if !text.isEmpty { return [text.joined(separator: " ")] }
        return try readInputLines(file: inputFile)
    }
}

/// T5 was trained on 512-token inputs; longer ones run (relative positions extrapolate) but quality drops.
func warnLongInputs(_ inputs: [String], model: T5Model, limit: Int?) {
    guard limit == nil else { return }
    for (i, input) in inputs.enumerated() {
        let n = model.tokenizer.encode(input).count
        if n > 512 { printError("t5: warning: input \(i + 1) has \(n) tokens, more than the 512 T5 was trained on") }
    }
}
