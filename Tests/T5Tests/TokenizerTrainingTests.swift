import Foundation
import Testing
@testable import T5

/// `t5 tokenizer train` and `TokenizerTraining`: the table libsentencepiece trains under T5's conventions must
/// tokenize exactly as transformers' T5Tokenizer does with it (ids recorded by
/// tools/make_tokenizer_train_fixture.py from the same corpus).
@Suite struct TokenizerTrainingTests {
    struct Case: Decodable {
        let text: String
        let ids: [Int]
    }

    struct Reference: Decodable {
        let vocab_size: Int
        let tokenizer_len: Int
        let cases: [Case]
    }

    static let directory = Fixtures.root.appendingPathComponent("tokenizer-train")

    func trainedTokenizer() throws -> (tokenizer: any Tokenizer, model: Data) {
        let reference = try Fixtures.reference(Reference.self, "tokenizer-train/ids.json")
        let training = TokenizerTraining(vocabSize: reference.vocab_size, threads: 1)
        let corpus = Self.directory.appendingPathComponent("corpus.txt")
        let (model, sentences) = try training.train(sentences: TokenizerTraining.sentences(of: [corpus.path]))
        // Every line that is not blank is a sentence.
        let lines = try String(contentsOf: corpus, encoding: .utf8).split(separator: "\n")
        #expect(sentences == lines.filter { !$0.allSatisfy { $0 == " " || $0 == "\t" } }.count)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tok-train-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: out) }
        try model.write(to: out.appendingPathComponent("spiece.model"))
        return (try TokenizerDirectory.load(out), model)
    }

    @Test func trainedTableTokenizesAsTransformersDoes() throws {
        let reference = try Fixtures.reference(Reference.self, "tokenizer-train/ids.json")
        let (tokenizer, _) = try trainedTokenizer()
        #expect(tokenizer.size == reference.tokenizer_len)
        for c in reference.cases {
            #expect(tokenizer.encode(c.text) == c.ids, "\(c.text.debugDescription)")
        }
    }

    @Test func trainedTableFollowsT5Conventions() throws {
        let (tokenizer, _) = try trainedTokenizer()
        #expect(tokenizer.piece(for: 0) == "<pad>")
        #expect(tokenizer.piece(for: 1) == "</s>")
        #expect(tokenizer.piece(for: 2) == "<unk>")
        #expect(tokenizer.sentinelCount == 100)
        // transformers' T5Tokenizer puts <extra_id_0> last: vocabulary size - 1.
        #expect(tokenizer.sentinelID(0) == tokenizer.size - 1)
        #expect(tokenizer.piece(for: tokenizer.size - 1) == "<extra_id_0>")
    }

    @Test func reservoirDrawIsReproducibleAndBounded() throws {
        var lines = (0..<500).map { "line number \($0) of the corpus" }[...]
        let training = TokenizerTraining(vocabSize: 40, inputSentenceSize: 50, seed: 7, threads: 1)
        let first = try training.train(sentences: { lines.popFirst() })
        lines = (0..<500).map { "line number \($0) of the corpus" }[...]
        let second = try training.train(sentences: { lines.popFirst() })
        #expect(first.sentences == 50)
        #expect(first.model == second.model)
    }

    @Test func badSettingsAndTextAreRefused() throws {
        #expect(throws: T5Error.self) { try TokenizerTraining(vocabSize: 3).validate() }
        #expect(throws: T5Error.self) { try TokenizerTraining(vocabSize: 100, characterCoverage: 0.5).validate() }
        var none: [String] = []
        #expect(throws: T5Error.self) { _ = try TokenizerTraining(vocabSize: 100).train(sentences: { none.popLast() }) }
        // More pieces than the text can give: SentencePiece's own reason, as an error, not an abort.
        var few = ["a b c", "a b"]
        do {
            _ = try TokenizerTraining(vocabSize: 5000, threads: 1).train(sentences: { few.popLast() })
            Issue.record("a 5000-piece table from two lines was not refused")
        } catch {
            #expect(error.description.contains("SentencePiece"))
        }
    }
}

/// The command: flags checked before reading, one line per error, nothing written beside a user's files.
@Suite struct TokenizerTrainCLITests {
    let cli = CLITests()

    func temporary() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tok-cli-\(UUID().uuidString)")
    }

    @Test func trainsWritesConfigAndTokenizes() throws {
        let out = temporary()
        defer { try? FileManager.default.removeItem(at: out) }
        let corpus = TokenizerTrainingTests.directory.appendingPathComponent("corpus.txt").path
        let r = try cli.run(["tokenizer", "train", "--text", corpus, "--vocab-size", "300", "--threads", "1",
                             "--config-like", "small", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any]
        #expect(config?["vocab_size"] as? Int == 400)
        #expect(config?["d_model"] as? Int == 512)
        let t = try cli.run(["tokenize", "--model", out.path, "--json", "La casa es maravillosa."])
        let reference = try Fixtures.reference(TokenizerTrainingTests.Reference.self, "tokenizer-train/ids.json")
        let expected = reference.cases.first { $0.text == "La casa es maravillosa." }!.ids
        #expect(t.stdout.contains("\"ids\":\(expected.map(String.init).joined(separator: ","))") ||
                t.stdout.contains("\"ids\":[\(expected.map(String.init).joined(separator: ","))]"), "\(t.stdout)")
    }

    /// A gzip-compressed corpus trains the same table as the plain file.
    @Test func gzipCorpusTrainsTheSameTable() throws {
        let corpus = TokenizerTrainingTests.directory.appendingPathComponent("corpus.txt")
        let compressed = temporary().appendingPathExtension("txt.gz")
        defer { try? FileManager.default.removeItem(at: compressed) }
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gzip.arguments = ["-c", corpus.path]
        FileManager.default.createFile(atPath: compressed.path, contents: nil)
        gzip.standardOutput = try FileHandle(forWritingTo: compressed)
        try gzip.run()
        gzip.waitUntilExit()
        let training = TokenizerTraining(vocabSize: 300, threads: 1)
        let plain = try training.train(sentences: TokenizerTraining.sentences(of: [corpus.path]))
        let unzipped = try training.train(sentences: TokenizerTraining.sentences(of: [compressed.path]))
        #expect(plain.sentences == unzipped.sentences)
        #expect(plain.model == unzipped.model)
    }

    @Test func badInputIsOneLine() throws {
        let out = temporary()
        defer { try? FileManager.default.removeItem(at: out) }
        let corpus = TokenizerTrainingTests.directory.appendingPathComponent("corpus.txt").path
        try cli.expectFailure(["tokenizer", "train", "--text", corpus, "--vocab-size", "2", "--out", out.path], "--vocab-size")
        try cli.expectFailure(["tokenizer", "train", "--text", corpus, "--vocab-size", "300", "--character-coverage", "0.5", "--out", out.path], "--character-coverage")
        try cli.expectFailure(["tokenizer", "train", "--text", corpus, "--vocab-size", "300", "--model-type", "word", "--out", out.path], "--model-type")
        try cli.expectFailure(["tokenizer", "train", "--text", "/nonexistent/corpus.txt", "--vocab-size", "300", "--out", out.path], "/nonexistent/corpus.txt")
        // A directory holding a user's file is never written into.
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: out.appendingPathComponent("notes.txt"))
        try cli.expectFailure(["tokenizer", "train", "--text", corpus, "--vocab-size", "300", "--out", out.path], "not empty")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path) == ["notes.txt"])
        // Invalid UTF-8 names the file and the line.
        let bad = temporary().appendingPathExtension("txt")
        defer { try? FileManager.default.removeItem(at: bad) }
        try Data([0x61, 0x0a, 0x62, 0xff, 0x0a]).write(to: bad)
        try cli.expectFailure(["tokenizer", "train", "--text", bad.path, "--vocab-size", "300", "--out", temporary().path], "\(bad.path):2")
    }
}
