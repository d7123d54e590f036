import Foundation
import Testing
@testable import T5

/// A directory with transformers' `tokenizer.json` and no `spiece.model` (T5TokenizerFast's save) tokenizes
/// exactly as transformers' T5TokenizerFast loaded from it (Tests/Fixtures/reference/t5-fast-tokenizer.json;
/// both from tools/make_tokenizer_json_fixture.py), and other pipelines are refused by field.
@Suite struct TokenizerJSONTests {
    static let directory = Fixtures.root.appendingPathComponent("tokenizers/t5-fast")

    struct Reference: Decodable {
        struct Encode: Decodable { var text: String; var ids: [Int]; var pieces: [String]; var decoded: String }
        struct Decode: Decodable { var ids: [Int]; var text: String }
        var directory: String
        var size: Int
        var encode: [Encode]
        var decode: [Decode]
    }

    static func reference() throws -> Reference {
        try Fixtures.reference(Reference.self, "reference/t5-fast-tokenizer.json")
    }

    static func fixtureText() throws -> String {
        try String(contentsOf: directory.appendingPathComponent("tokenizer.json"), encoding: .utf8)
    }

    /// `text` as the tokenizer.json of a scratch directory: the tokenizer loaded from it, or the error.
    static func load(_ text: String) throws -> Result<any Tokenizer, T5Error> {
        let dir = try scratchDirectory("tokenizer-json")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(text.utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        do {
            return .success(try TokenizerDirectory.load(dir))
        } catch {
            return .failure(error)
        }
    }

    /// Every case of the reference through `tokenizer`: ids, tokens, and decode(skip_special_tokens=True) of
    /// the ids and of the random id lists.
    static func expectReference(_ tokenizer: any Tokenizer, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let reference = try reference()
        #expect(reference.encode.count > 200 && reference.decode.count >= 100, sourceLocation: sourceLocation)
        #expect(tokenizer.size == reference.size, sourceLocation: sourceLocation)
        for item in reference.encode {
            let text = TokenizerTests.show(item.text)
            #expect(tokenizer.encode(item.text) == item.ids, "\(text)", sourceLocation: sourceLocation)
            #expect(tokenizer.pieces(item.ids).elementsEqual(item.pieces, by: TokenizerTests.same), "\(text)", sourceLocation: sourceLocation)
            #expect(TokenizerTests.same(tokenizer.decode(item.ids), item.decoded), "\(text)", sourceLocation: sourceLocation)
        }
        for item in reference.decode {
            #expect(TokenizerTests.same(tokenizer.decode(item.ids), item.text), "\(item.ids)", sourceLocation: sourceLocation)
        }
    }

    @Test func idsTokensAndTextMatchTransformers() throws {
        #expect(try Self.reference().directory == "tokenizers/t5-fast")
        let tokenizer = try TokenizerDirectory.load(Self.directory)
        #expect(tokenizer is T5Tokenizer)
        #expect(tokenizer.summary.contains("tokenizer.json"))
        try Self.expectReference(tokenizer)
        let spm = try TokenizerTests.tokenizer()
        #expect((0..<100).map(tokenizer.sentinelID) == (0..<100).map(spm.sentinelID))
    }

    /// The Metaspace form older `tokenizers` versions wrote, `{"replacement": "▁", "add_prefix_space": true}`,
    /// is the same pipeline (tokenizers reads it as prepend_scheme "always", split true; the fixture script
    /// checks that it gives the same ids); so are the defaults when both fields are absent.
    @Test func theLegacyMetaspaceFormIsTheSamePipeline() throws {
        let original = try Self.fixtureText()
        let modern = #""prepend_scheme": "always",\s*"split": true"#
        #expect(original.ranges(of: try Regex(modern)).count == 2, "the fixture's Metaspace objects changed form")
        for replacement in [#""add_prefix_space": true"#, #""str_rep": "▁""#, #""add_prefix_space": true, "prepend_scheme": "always""#] {
            let legacy = original.replacingOccurrences(of: modern, with: replacement, options: .regularExpression)
            try Self.expectReference(try Self.load(legacy).get())
        }
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

    /// Checkpoints and conversions write the tokenizer's own file back: tokenizer.json, byte for byte, and
    /// the result tokenizes as the original.
    @Test func tokenizerJSONRoundTripsThroughConvertAndCheckpoints() throws {
        let cli = CLITests()
        let dir = try cli.scratchModel("t5-relu-tied")
        let out = dir.deletingLastPathComponent().appendingPathComponent(dir.lastPathComponent + "-bf16")
        defer {
            try? FileManager.default.removeItem(at: dir)
            try? FileManager.default.removeItem(at: out)
        }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("spiece.model"))
        let json = Self.directory.appendingPathComponent("tokenizer.json")
        try FileManager.default.copyItem(at: json, to: dir.appendingPathComponent("tokenizer.json"))
        let files = try Checkpoint.ModelFiles.copying(from: dir, config: try T5Config.load(from: dir.appendingPathComponent("config.json"))).tokenizerFiles
        #expect(files == ["tokenizer.json": try Data(contentsOf: json)])
        let r = try cli.run(["convert", "--model", dir.path, "--weights", "bf16", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Data(contentsOf: out.appendingPathComponent("tokenizer.json")) == Data(contentsOf: json))
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("spiece.model").path))
        let texts = try Self.reference().encode.prefix(40).map(\.text).filter { !$0.contains("\n") && !$0.contains("\r") }
        let converted = try cli.run(["tokenize", "--model", out.path, "--json"] + texts)
        let original = try cli.run(["tokenize", "--model", Fixtures.modelDirectory("t5-relu-tied").path, "--json"] + texts)
        #expect(converted.status == 0 && converted.stdout == original.stdout, "\(converted.stderr)")
    }

    @Test func otherPipelinesAreRefusedByField() throws {
        let original = try Self.fixtureText()
        let file = "tokenizer.json: tokenizer: "
        let cases: [(String, String, String)] = [
            (#""type": "Unigram""#, #""type": "BPE""#, "model.type: not Unigram"),
            (#""byte_fallback": false"#, #""byte_fallback": true"#, "model.byte_fallback: true"),
            (#""unk_id": 2"#, #""unk_id": 0"#, "model.unk_id: not 2"),
            (#""type": "WhitespaceSplit""#, #""type": "Whitespace""#, "pre_tokenizer: not WhitespaceSplit + Metaspace"),
            (#""type": "Precompiled""#, #""type": "NFKC""#, "normalizer: not Precompiled"),
            (#""decoder": \{\s*"type": "Metaspace""#, #""decoder": {"type": "ByteLevel""#, "decoder: not Metaspace(▁, always, split)"),
            (#""decoder": \{[^}]*\}"#, #""decoder": null"#, "decoder: not Metaspace"),
            (#""prepend_scheme": "always""#, #""prepend_scheme": "first""#, "pre_tokenizer: not WhitespaceSplit + Metaspace(▁, always, split)"),
            (#""split": true"#, #""split": false"#, "pre_tokenizer: not WhitespaceSplit + Metaspace"),
            (#""prepend_scheme": "always""#, #""add_prefix_space": false"#, "pre_tokenizer: not WhitespaceSplit + Metaspace"),
            (#""type": "TemplateProcessing""#, #""type": "BertProcessing""#, "post_processor: not the template $A </s>"),
            (#""lstrip": false"#, #""lstrip": true"#, "added_tokens[0].lstrip: true"),
            (#""content": "<unk>""#, #""content": "<mask>""#, "added_tokens[2]: not a piece of model.vocab at its id"),
        ]
        for (from, to, message) in cases {
            guard let range = original.range(of: from, options: .regularExpression) else {
                Issue.record("the fixture has no \(from)")
                continue
            }
            switch try Self.load(original.replacingCharacters(in: range, with: to)) {
            case .success:
                Issue.record("\(to) loaded")
            case .failure(let error):
                #expect(error.description.contains(file + message), "\(error.description)")
                #expect(!error.description.contains("\n"))
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
