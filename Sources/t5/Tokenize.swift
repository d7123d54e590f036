import ArgumentParser
import T5

struct Tokenize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the token ids and pieces of each text (with the appended </s>).")

    @OptionGroup var modelOptions: ModelOptions
    @Flag(help: "Print one {\"text\", \"ids\", \"pieces\"} JSON object per text.") var json = false
    @Option(help: "Read texts from this file, one per line.") var inputFile: String?
    @Argument(help: "Texts to tokenize (without any, and without --input-file, one per line from stdin).") var texts: [String] = []

    struct Record: Encodable {
        let text: String
        let ids: [Int]
        let pieces: [String]
    }

    func validate() throws {
        if inputFile != nil && !texts.isEmpty { throw ValidationError("give either --input-file or TEXT, not both") }
    }

    func run() async throws {
        let texts = self.texts.isEmpty ? try readInputLines(file: inputFile) : self.texts
        let directory = try modelOptions.directory()
        let tokenizer = try TokenizerDirectory.load(directory)
        for text in texts {
            let ids = tokenizer.encode(text)
            let pieces = tokenizer.pieces(ids)
            if json {
                try printJSON(Record(text: text, ids: ids, pieces: pieces))
            } else {
                print(zip(ids, pieces).map { "\($0):\($1)" }.joined(separator: " "))
            }
        }
    }
}
