import ArgumentParser
import Foundation
import T5

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text for each input.",
        discussion: "Inputs come from TEXT arguments, --input-file (one per line) or stdin (one per line).")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var decoding: DecodingOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var inputs: InputFileOptions
    @Flag(help: "Print one JSON object per input: {\"input\", \"outputs\": [{\"text\", \"ids\", \"score\"}]} plus a JSON Lines input's other fields.") var json = false
    @Flag(help: "With --json, give each output's per-token log-probabilities (\"token_logprobs\", under the processed distribution, as transformers' output_scores with normalize_logits); greedy search and sampling.") var outputScores = false
    @Argument(help: textArgumentHelp) var text: [String] = []

    struct Record: Encodable {
        let input: String
        let outputs: [GeneratedSequence]
    }

    func validate() throws {
        if inputs.inputFile != nil && !text.isEmpty { throw ValidationError("give either --input-file or TEXT, not both") }
        if outputScores && !json { throw ValidationError("--output-scores needs --json") }
        if outputScores && (decoding.beams ?? 1) > 1 {
            throw ValidationError("--output-scores gives per-token scores for greedy search and sampling; beam search reports each sequence's score")
        }
    }

    func run() async throws {
        runtime.apply()
        // The model is loaded (and its errors reported) before any input is read.
        let model = try modelOptions.load()
        let options = try decoding.generationOptions(for: model)
        if outputScores && options.numBeams > 1 {
            throw T5Error.invalidOption(name: "--output-scores", reason: "generation_config.json asks for beam search; pass --beams 1 (per-token scores are for greedy search and sampling)")
        }

        // A single TEXT shown to a person streams token by token.
        if text.count == 1 && !json && options.numBeams == 1 && options.numReturnSequences == 1 {
            warnLongInputs(text, model: model, limit: options.maxInputTokens ?? options.truncateInputsTo)
            for try await token in model.stream(text[0], options: options) {
                FileHandle.standardOutput.write(Data(token.text.utf8))
            }
            print()
            return
        }
        try forEachInputBatch(texts: text, file: inputs) { records in
            warnLongInputs(records.map(\.text), model: model, limit: options.maxInputTokens ?? options.truncateInputsTo)
            let results = try model.generate(records.map(\.text), options: options)
            for (record, outputs) in zip(records, results) {
                if json {
                    let shown = outputScores ? outputs : outputs.map { var o = $0; o.tokenScores = nil; return o }
                    try printJSON(Record(input: record.text, outputs: shown), extra: record.extra)
                } else if outputs.count == 1 {
                    print(outputs[0].text)
                } else {
                    // Several outputs of one input: grouped under it, indented, so that they cannot be
                    // mistaken for the answers to the next inputs.
                    print(record.text)
                    for output in outputs { print("  " + output.text) }
                }
            }
        }
    }
}

/// T5 was trained on 512-token inputs; longer ones run (relative positions extrapolate) but quality drops.
func warnLongInputs(_ inputs: [String], model: T5Model, limit: Int?) {
    guard limit == nil else { return }
    for (i, input) in inputs.enumerated() {
        let n = model.tokenizer.encode(input).count
        if n > 512 { warn("input \(i + 1) has \(n) tokens, more than the 512 T5 was trained on") }
    }
}
