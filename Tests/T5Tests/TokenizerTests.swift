import Foundation
import Testing
@testable import T5

/// Checks `T5Tokenizer` against answers recorded from transformers' `T5Tokenizer` by
/// tools/make_fixtures.py (Tests/Fixtures/reference/tokenizer.json, for
/// Tests/Fixtures/spm/spiece.model). No expected value here comes from this package's code.
@Suite struct TokenizerTests {
    struct EncodeCase: Decodable {
        var text: String
        var ids: [Int]
        var pieces: [String]
    }

    struct DecodeCase: Decodable {
        var ids: [Int]
        var text: String
    }

    struct Reference: Decodable {
        var encode: [EncodeCase]
        var decode: [DecodeCase]
    }

    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // T5Tests
        .deletingLastPathComponent()  // Tests
        .appendingPathComponent("Fixtures")
    static let modelFile = fixtures.appendingPathComponent("spm/spiece.model")
    static let referenceFile = fixtures.appendingPathComponent("reference/tokenizer.json")

    static func reference() throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: referenceFile))
    }

    static func tokenizer() throws -> T5Tokenizer {
        try T5Tokenizer(modelFile: modelFile)
    }

    /// Swift's `String` equality is canonical equivalence; the fixtures distinguish
    /// "e\u{301}" from "é", so texts are compared scalar by scalar.
    static func same(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.elementsEqual(b.unicodeScalars)
    }

    static func show(_ text: String) -> String {
        text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F
            ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined()
    }

    @Test func referenceHasCases() throws {
        let reference = try Self.reference()
        #expect(reference.encode.count >= 10)
        #expect(reference.decode.count >= 5)
    }

    @Test func encodeMatchesTransformers() throws {
        let tokenizer = try Self.tokenizer()
        for item in try Self.reference().encode {
            let ids = tokenizer.encode(item.text)
            #expect(ids == item.ids, "text \"\(Self.show(item.text))\": expected \(item.ids), got \(ids)")
            let withoutEOS = tokenizer.encode(item.text, appendEOS: false)
            #expect(withoutEOS + [T5Tokenizer.eosID] == item.ids,
                    "appendEOS: false, text \"\(Self.show(item.text))\": expected \(item.ids.dropLast()), got \(withoutEOS)")
        }
    }

    @Test func piecesMatchTransformers() throws {
        let tokenizer = try Self.tokenizer()
        for item in try Self.reference().encode {
            let pieces = tokenizer.pieces(item.ids)
            #expect(pieces.count == item.pieces.count && zip(pieces, item.pieces).allSatisfy(Self.same),
                    "ids \(item.ids) of \"\(Self.show(item.text))\": expected \(item.pieces), got \(pieces)")
            for (id, piece) in zip(item.ids, item.pieces) {
                #expect(tokenizer.piece(for: id).map { Self.same($0, piece) } == true)
            }
        }
    }

    @Test func decodeMatchesTransformers() throws {
        let tokenizer = try Self.tokenizer()
        for item in try Self.reference().decode {
            let text = tokenizer.decode(item.ids)
            #expect(Self.same(text, item.text),
                    "ids \(item.ids): expected \"\(Self.show(item.text))\", got \"\(Self.show(text))\"")
        }
    }

    /// Sentinel ids and pieces as transformers recorded them: wherever the reference encodes
    /// a sentinel, its id is `sentinelID(n)` and its piece `<extra_id_n>`.
    @Test func sentinels() throws {
        let tokenizer = try Self.tokenizer()
        #expect(tokenizer.size == tokenizer.sentencePieceSize + 100)
        #expect(tokenizer.sentinelID(0) == tokenizer.size - 1)
        #expect(tokenizer.sentinelID(99) == tokenizer.sentencePieceSize)
        #expect(tokenizer.piece(for: tokenizer.size) == nil)
        #expect(tokenizer.piece(for: -1) == nil)
        var seen = 0
        for item in try Self.reference().encode {
            for (id, piece) in zip(item.ids, item.pieces) where piece.hasPrefix("<extra_id_") && id >= tokenizer.sentencePieceSize {
                let n = Int(piece.dropFirst("<extra_id_".count).dropLast())
                #expect(n.map(tokenizer.sentinelID) == id, "piece \(piece) has id \(id) in the reference")
                seen += 1
            }
        }
        #expect(seen > 0, "the reference should encode at least one sentinel")
        // Special ids as transformers assigns them.
        let eos = try Self.reference().encode.first { !$0.ids.isEmpty }
        #expect(eos?.ids.last == T5Tokenizer.eosID && eos?.pieces.last == "</s>")
    }

    @Test func missingFileIsReported() {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("t5-tokenizer-missing-\(UUID().uuidString)/spiece.model")
        #expect(throws: T5Error.missingFile(path: path.path)) {
            _ = try T5Tokenizer(modelFile: path)
        }
    }

    @Test func garbageFileIsReported() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("t5-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var generator = SystemRandomNumberGenerator()
        let model = try Data(contentsOf: Self.modelFile)
        let garbage: [(String, Data)] = [
            ("text", Data("this is not a sentencepiece model\n".utf8)),
            ("random", Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) })),
            ("empty", Data()),
            ("truncated", model.prefix(model.count / 2)),
        ]
        for (name, data) in garbage {
            let file = directory.appendingPathComponent("\(name).model")
            try data.write(to: file)
            do {
                _ = try T5Tokenizer(modelFile: file)
                Issue.record("\(name): a garbage model loaded")
            } catch {
                guard case let .tokenizer(path, reason) = error else {
                    Issue.record("\(name): expected .tokenizer, got \(error)")
                    continue
                }
                #expect(path == file.path)
                #expect(!reason.isEmpty)
            }
        }
    }

    /// A piece whose text starts with a NUL byte: SentencePiece's trie (darts-clone, NUL-terminated keys) takes
    /// it for an empty key and throws a C++ exception, which the shim turns into an error. The shim leaked the
    /// processor and the model it had parsed on that path (found by the `tokenizer` fuzz target under
    /// LeakSanitizer; Fuzz/seeds/spiece/regression-nul-piece.model is this model, so Fuzz/run.sh checks the
    /// leak stays fixed).
    @Test func aPieceStartingWithNULIsRefused() {
        func piece(_ text: [UInt8], type: UInt8) -> [UInt8] {
            let body: [UInt8] = [0x0A, UInt8(text.count)] + text + [0x15, 0x00, 0x00, 0x80, 0xBF, 0x18, type]  // score -1
            return [0x0A, UInt8(body.count)] + body
        }
        let model = piece(Array("<pad>".utf8), type: 3) + piece(Array("</s>".utf8), type: 3)
            + piece(Array("<unk>".utf8), type: 2) + piece([0x00, 0x61], type: 1) + piece([0x61], type: 1)
        do {
            _ = try T5Tokenizer(modelBytes: model, path: "nul.model")
            Issue.record("a model with a piece starting with NUL loaded")
        } catch {
            guard case let .tokenizer(path, reason) = error else {
                Issue.record("expected .tokenizer, got \(error)")
                return
            }
            #expect(path == "nul.model")
            #expect(reason.contains("SentencePiece cannot load the model") && reason.contains("zero-length key"), "\(reason)")
        }
    }

    @Test func concurrentEncodingGivesTheSameIds() async throws {
        let tokenizer = try Self.tokenizer()
        let cases = try Self.reference().encode
        let mismatches = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var failures: [String] = []
                    for _ in 0..<5 {
                        for item in cases {
                            let ids = tokenizer.encode(item.text)
                            if ids != item.ids {
                                failures.append("text \"\(Self.show(item.text))\": expected \(item.ids), got \(ids)")
                            }
                        }
                    }
                    return failures
                }
            }
            var all: [String] = []
            for await failures in group { all += failures }
            return all
        }
        let mismatchCount = mismatches.count
        #expect(mismatchCount == 0, "first mismatches:\n\(mismatches.prefix(5).joined(separator: "\n"))")
    }
}
