import Foundation
import Testing
@testable import T5

/// A directory with transformers' `tokenizer.json` and no `spiece.model` (T5TokenizerFast's save; fixture
/// from tools/make_tokenizer_json_fixture.py) tokenizes exactly as transformers' T5 tokenizer does
/// (Tests/Fixtures/reference/tokenizer.json), and other pipelines are refused by field.
@Suite struct TokenizerJSONTests {
    static let directory = Fixtures.root.appendingPathComponent("tokenizers/t5-fast")

    @Test func idsPiecesAndTextMatchTransformers() throws {
        let tokenizer = try TokenizerDirectory.load(Self.directory)
        #expect(tokenizer is T5Tokenizer)
        #expect(tokenizer.summary.contains("tokenizer.json"))
        let spm = try TokenizerTests.tokenizer()
        #expect(tokenizer.size == spm.size)
        let reference = try TokenizerTests.reference()
        for item in reference.encode {
            #expect(tokenizer.encode(item.text) == item.ids, "\(TokenizerTests.show(item.text))")
            #expect(tokenizer.pieces(item.ids).elementsEqual(item.pieces, by: TokenizerTests.same))
        }
        for item in reference.decode {
            #expect(TokenizerTests.same(tokenizer.decode(item.ids), item.text), "\(item.ids)")
        }
        #expect((0..<100).map(tokenizer.sentinelID) == (0..<100).map(spm.sentinelID))
    }

    /// A model directory whose tokenizer is only tokenizer.json generates and scores as with spiece.model.
    @Test func aModelWithOnlyTokenizerJSONRuns() throws {
        let cli = CLITests()
        let dir = try cli.scratchModel("t5-relu-tied")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("spiece.model"))
        try FileManager.default.copyItem(at: Self.directory.appendingPathComponent("tokenizer.json"), to: dir.appendingPathComponent("tokenizer.json"))
        let a = try cli.run(["score", "--model", dir.path, "--json", "--input", "translate: the dog <extra_id_0>", "--target", "der Hund"])
        let b = try cli.run(["score", "--model", Fixtures.modelDirectory("t5-relu-tied").path, "--json", "--input", "translate: the dog <extra_id_0>", "--target", "der Hund"])
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stdout == b.stdout)
    }

    @Test func otherPipelinesAreRefusedByField() throws {
        let original = try String(contentsOf: Self.directory.appendingPathComponent("tokenizer.json"), encoding: .utf8)
        let cases: [(String, String, String)] = [
            (#""type": "Unigram""#, #""type": "BPE""#, "model.type: not Unigram"),
            (#""byte_fallback": false"#, #""byte_fallback": true"#, "model.byte_fallback: true"),
            (#""type": "WhitespaceSplit""#, #""type": "Whitespace""#, "pre_tokenizer: not WhitespaceSplit + Metaspace"),
            (#""type": "Precompiled""#, #""type": "NFKC""#, "normalizer: not Precompiled"),
        ]
        for (from, to, message) in cases {
            #expect(original.contains(from), "the fixture has no \(from)")
            let dir = try scratchDirectory("tokenizer-json")
            defer { try? FileManager.default.removeItem(at: dir) }
            try Data(original.replacingOccurrences(of: from, with: to).utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
            do {
                _ = try TokenizerDirectory.load(dir)
                Issue.record("\(to) loaded")
            } catch {
                #expect(error.description.contains(message), "\(error.description)")
            }
        }
    }

    /// transformers' own save of the fixture tokenizer (all of its added tokens are pieces) loads; a token added
    /// with add_tokens, which the SentencePiece table lacks, is refused instead of being tokenized differently.
    @Test func addedTokensBeyondTheModelAreRefused() throws {
        #expect(try TokenizerDirectory.load(Self.directory).size == (try TokenizerTests.tokenizer()).size)
        let dir = try scratchDirectory("added-tokens")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Fixtures.root.appendingPathComponent("spm/spiece.model"), to: dir.appendingPathComponent("spiece.model"))
        let size = try TokenizerTests.tokenizer().size
        try Data(#"{"added_tokens_decoder": {"\#(size)": {"content": "<sep>", "special": false}}}"#.utf8)
            .write(to: dir.appendingPathComponent("tokenizer_config.json"))
        do {
            _ = try TokenizerDirectory.load(dir)
            Issue.record("an added token beyond spiece.model was ignored")
        } catch {
            #expect(error.description.contains("added token '<sep>' (id \(size)) is not in the SentencePiece model"), "\(error.description)")
        }
    }
}
