import Foundation
import Testing
@testable import T5

/// `ByT5Tokenizer` against transformers 5's `ByT5Tokenizer` in four directory layouts, as recorded by
/// tools/make_byt5_fixtures.py (Tests/Fixtures/reference/byt5-tokenizer.json). The model answers of
/// byt5-tiny (scores, greedy, beam, batches) are checked by ParityTests with the other fixture models.
@Suite struct ByT5TokenizerTests {
    struct Layout: Decodable {
        struct Encode: Decodable { var text: String; var ids: [Int] }
        struct Decode: Decodable { var ids: [Int]; var text: String }
        struct Piece: Decodable { var id: Int; var piece: String }
        var directory: String
        var size: Int
        var sentinel_ids: [Int]
        var encode: [Encode]
        var decode: [Decode]
        var pieces: [Piece]
    }

    struct Reference: Decodable { var layouts: [Layout] }

    static func reference() throws -> Reference {
        try Fixtures.reference(Reference.self, "reference/byt5-tokenizer.json")
    }

    static func tokenizer(_ layout: Layout) throws -> any Tokenizer {
        try TokenizerDirectory.load(Fixtures.root.appendingPathComponent(layout.directory))
    }

    @Test func everyLayoutIsRead() throws {
        let layouts = try Self.reference().layouts
        #expect(layouts.map(\.directory) == ["models/byt5-tiny", "tokenizers/byt5-hub", "tokenizers/byt5-added", "tokenizers/byt5-extra3"])
        for layout in layouts {
            let tokenizer = try Self.tokenizer(layout)
            #expect(tokenizer is ByT5Tokenizer, "\(layout.directory)")
            #expect(tokenizer.size == layout.size, "\(layout.directory)")
            #expect((0..<tokenizer.sentinelCount).map(tokenizer.sentinelID) == layout.sentinel_ids, "\(layout.directory)")
        }
    }

    @Test func encodeMatchesTransformers() throws {
        for layout in try Self.reference().layouts {
            let tokenizer = try Self.tokenizer(layout)
            #expect(layout.encode.count > 200)
            for item in layout.encode {
                #expect(tokenizer.encode(item.text) == item.ids, "\(layout.directory): \(TokenizerTests.show(item.text))")
            }
        }
    }

    @Test func decodeMatchesTransformers() throws {
        for layout in try Self.reference().layouts {
            let tokenizer = try Self.tokenizer(layout)
            for item in layout.decode {
                let text = tokenizer.decode(item.ids)
                #expect(TokenizerTests.same(text, item.text), "\(layout.directory): \(item.ids) gave \(TokenizerTests.show(text)), transformers \(TokenizerTests.show(item.text))")
            }
        }
    }

    @Test func piecesMatchTransformers() throws {
        for layout in try Self.reference().layouts {
            let tokenizer = try Self.tokenizer(layout)
            for item in layout.pieces {
                #expect(tokenizer.piece(for: item.id).map { TokenizerTests.same($0, item.piece) } == true, "\(layout.directory): id \(item.id)")
            }
            #expect(tokenizer.piece(for: layout.size) == nil)
        }
    }

    /// ids past the table (a model's vocabulary may be larger) are skipped, as for SentencePiece models.
    @Test func idsOutsideTheTableAreSkipped() throws {
        let tokenizer = try ByT5Tokenizer(extraIDs: 3)
        #expect(tokenizer.size == 262)
        #expect(tokenizer.decode([3 + 0x68, 300, 383, -1, 3 + 0x69]) == "hi")
    }

    /// The default tokenizer writes a tokenizer_config.json that loads the same tokenizer back.
    @Test func defaultTokenizerFilesLoadBack() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("byt5-files-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let tokenizer = try ByT5Tokenizer()
        for (name, bytes) in tokenizer.files { try bytes.write(to: dir.appendingPathComponent(name)) }
        let loaded = try TokenizerDirectory.load(dir)
        #expect(loaded.size == 384)
        #expect(loaded.encode("a <extra_id_0> b") == [100, 35, 259, 35, 101, 1])
    }

    func scratch(_ files: [String: String]) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("byt5-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, text) in files { try Data(text.utf8).write(to: dir.appendingPathComponent(name)) }
        return dir
    }

    /// Layouts transformers reads otherwise than the rules, or not at all, are refused with the file named.
    @Test func inconsistentLayoutsAreRefused() throws {
        let cases: [([String: String], String)] = [
            (["tokenizer_config.json": #"{"tokenizer_class": "ByT5Tokenizer"}"#, "added_tokens.json": #"{"<sep>": 384}"#],
             "'<sep>' at id 384 is not in tokenizer_config.json's tokens"),
            (["tokenizer_config.json": #"{"tokenizer_class": "ByT5Tokenizer", "extra_ids": 2, "additional_special_tokens": ["<a>"]}"#],
             "must include the 2 extra_ids tokens"),
            (["tokenizer_config.json": #"{"tokenizer_class": "ByT5Tokenizer", "added_tokens_decoder": {"100": {"content": "<x>"}}}"#],
             "id 100 is a byte's id"),
            (["tokenizer_config.json": #"{"tokenizer_class": "ByT5Tokenizer", "eos_token": "<eos>"}"#],
             "eos_token '<eos>' is not the token at id 1"),
            (["tokenizer_config.json": #"{"tokenizer_class": "ByT5Tokenizer", "extra_ids": 1000000000}"#],
             "extra_ids: 1000000000 is outside"),
            (["tokenizer_config.json": #"{"tokenizer_class": "ByT5Tokenizer", "added_tokens_decoder": {"300": {"content": "<x>"}, "301": {"content": "<x>"}}}"#],
             "'<x>' is both id 300 and id 301"),
            (["tokenizer_config.json": #"{"tokenizer_class": "BertTokenizer"}"#], "tokenizer_class BertTokenizer is not supported"),
            (["tokenizer_config.json": #"{"tokenizer_class": "ByT5Tokenizer"}"#, "spiece.model": "x"], "also holds a spiece.model"),
        ]
        for (files, message) in cases {
            let dir = try scratch(files)
            defer { try? FileManager.default.removeItem(at: dir) }
            do {
                _ = try TokenizerDirectory.load(dir)
                Issue.record("\(files) loaded")
            } catch {
                #expect(error.description.contains(message), "\(error.description)")
            }
        }
    }

    /// A ByT5 checkpoint through the real binary: generate, score and tokenize name no spiece.model.
    @Test func theCommandLineRunsAByT5Checkpoint() throws {
        let cli = CLITests()
        let dir = Fixtures.modelDirectory("byt5-tiny")
        let tokens = try cli.run(["tokenize", "--model", dir.path, "--json", "hé </s> x"])
        #expect(tokens.status == 0, "\(tokens.stderr)")
        let record = try #require(try cli.jsonLines(tokens.stdout).first)
        #expect(record["ids"] as? [Int] == [107, 198, 172, 1, 123, 1])
        let info = try cli.run(["info", "--model", dir.path])
        #expect(info.status == 0, "\(info.stderr)")
        #expect(info.stdout.contains("ByT5 (UTF-8 bytes)"), "\(info.stdout)")
        let generated = try cli.run(["generate", "--model", dir.path, "--max-new-tokens", "5", "--json", "hello"])
        #expect(generated.status == 0, "\(generated.stderr)")
    }

    /// Fine-tuning a ByT5 checkpoint writes its tokenizer files (no spiece.model) and the result loads
    /// with the same tokenizer.
    @Test func finetuningAByT5CheckpointKeepsItsTokenizer() throws {
        let dir = try scratchDirectory("byt5-finetune")
        defer { try? FileManager.default.removeItem(at: dir) }
        let train = dir.appendingPathComponent("t.tsv")
        try Data("abc\tcba\nhé\téh\n".utf8).write(to: train)
        let out = dir.appendingPathComponent("out")
        let r = try FinetuneCLITests().run(["finetune", "--model", Fixtures.modelDirectory("byt5-tiny").path, "--train", train.path,
                                            "--out", out.path, "--steps", "2", "--batch-size", "2", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: out.path))
        #expect(names.isSuperset(of: ["config.json", "model.safetensors", "tokenizer_config.json", "added_tokens.json", "checkpoint-2"]), "\(names)")
        #expect(!names.contains("spiece.model"))
        let model = try T5Model(directory: out)
        #expect(model.tokenizer is ByT5Tokenizer)
        #expect(model.tokenizer.encode("hé") == [107, 198, 172, 1])
    }
}
