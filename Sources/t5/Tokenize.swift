import ArgumentParser
import T5

struct Tokenize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the token ids and pieces of each text (with the appended </s>).")

    @OptionGroup var modelOptions: ModelOptions
    @Flag(help: "Print one {\"text\", \"ids\", \"pieces\"} JSON object per text.") var json = false
    @OptionGroup var inputs: InputFileOptions
    @OptionGroup var output: QuietOption
    @Argument(help: textArgumentHelp) var texts: [String] = []

    struct Record: Encodable {
        let text: String
        let ids: [Int]
        let pieces: [String]
    }

    func validate() throws {
        if inputs.inputFile != nil && !texts.isEmpty { throw ValidationError("give either --input-file or TEXT, not both") }
    }

    func run() async throws {
        output.apply()
        let directory = try modelOptions.directory()
        let tokenizer = try TokenizerDirectory.load(directory)
        try forEachInputBatch(texts: texts, file: inputs) { records in
            for record in records {
                let ids = tokenizer.encode(record.text)
                let pieces = tokenizer.pieces(ids)
                if json {
                    try printJSON(Record(text: record.text, ids: ids, pieces: pieces), extra: record.extra)
                } else {
                    print(zip(ids, pieces).map { "\($0):\($1)" }.joined(separator: " "))
                }
            }
        }
    }
}
