import Foundation
import Testing
@testable import T5

/// Encoder-only checkpoints and embeddings, against transformers' T5EncoderModel / UMT5EncoderModel and
/// sentence-transformers' SentenceTransformer.encode (tools/make_embedding_fixtures.py).
@Suite struct EmbeddingTests {
    struct Case: Decodable {
        let text: String
        let ids: [Int]
        let hidden: [[Float]]
        let mean: [Float]
        let first: [Float]
        let padded_ids: [Int]
        let padded_hidden: [[Float]]
        let padded_mean: [Float]
    }
    struct Encoder: Decodable {
        let pad_to: Int
        let cases: [Case]
    }
    struct Sentence: Decodable {
        let texts: [String]
        let embeddings: [[Float]]
    }
    struct Reference: Decodable {
        let encoders: [String: Encoder]
        let sentence_transformers: [String: Sentence]
    }

    static let reference = Result { try Fixtures.reference(Reference.self, "reference/embeddings.json") }
    let cli = CLITests()

    func close(_ a: [Float], _ b: [Float], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.count == b.count, "\(what): \(a.count) values, expected \(b.count)", sourceLocation: sourceLocation)
        if let mismatch = firstMismatch(a, b, tolerance: 1e-4) {
            Issue.record("\(what): \(mismatch) (transformers)", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: ["t5-encoder-tiny", "umt5-encoder-tiny"])
    func encoderOnlyCheckpointsMatchTransformers(name: String) throws {
        let ref = try #require(try Self.reference.get().encoders[name])
        let model = try T5Model(directory: Fixtures.modelDirectory(name))
        #expect(!model.hasDecoder)
        #expect(model.architecture == (name.hasPrefix("umt5") ? "UMT5EncoderModel" : "T5EncoderModel"))
        let texts = ref.cases.map(\.text)
        // One batch of every text (padded and masked), in the order given.
        let states = try model.hiddenStates(texts)
        let means = try model.embed(texts)
        let firsts = try model.embed(texts, pooling: .first)
        for (i, c) in ref.cases.enumerated() {
            #expect(states[i].ids == c.ids, "\(name) \(c.text.debugDescription) ids")
            close(states[i].values, c.hidden.flatMap { $0 }, "\(name) \(c.text.debugDescription) hidden")
            close(means[i], c.mean, "\(name) \(c.text.debugDescription) mean")
            close(firsts[i], c.first, "\(name) \(c.text.debugDescription) first")
        }
        // Padded to N with pad ids and no attention mask, as Flux feeds T5.
        let padded = try model.hiddenStates(texts, options: EmbeddingOptions(padTo: ref.pad_to))
        let paddedMeans = try model.embed(texts, options: EmbeddingOptions(padTo: ref.pad_to))
        for (i, c) in ref.cases.enumerated() {
            #expect(padded[i].ids == c.padded_ids)
            close(padded[i].values, c.padded_hidden.flatMap { $0 }, "\(name) \(c.text.debugDescription) padded hidden")
            close(paddedMeans[i], c.padded_mean, "\(name) \(c.text.debugDescription) padded mean")
        }
        // Unit length after --normalize, the direction of the mean.
        let unit = try model.embed([texts[0]], normalize: true)[0]
        let norm = ref.cases[0].mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
        close(unit, ref.cases[0].mean.map { $0 / norm }, "\(name) normalized mean")
    }

    @Test func aFullCheckpointEmbedsWithItsEncoder() throws {
        // t5-encoder-tiny is t5v11-gated-gelu's encoder saved by T5EncoderModel: the same states.
        let ref = try #require(try Self.reference.get().encoders["t5-encoder-tiny"])
        let model = try T5Model(directory: Fixtures.modelDirectory("t5v11-gated-gelu"))
        #expect(model.hasDecoder)
        let means = try model.embed(ref.cases.map(\.text))
        for (i, c) in ref.cases.enumerated() { close(means[i], c.mean, "full checkpoint mean \(i)") }
    }

    @Test(arguments: ["st-t5-mean", "st-t5-cls"])
    func sentenceTransformersDirectoriesMatchEncode(name: String) throws {
        let ref = try #require(try Self.reference.get().sentence_transformers[name])
        let encoder = try SentenceEncoder(directory: Fixtures.modelDirectory(name))
        #expect(encoder.maxSequenceLength == 12)
        let vectors = try encoder.encode(ref.texts)
        for (i, expected) in ref.embeddings.enumerated() { close(vectors[i], expected, "\(name) \(ref.texts[i].debugDescription)") }
        // And through the command, as JSON.
        let r = try cli.run(["embed", "--model", Fixtures.modelDirectory(name).path, "--json", ref.texts[0]])
        #expect(r.status == 0, "\(r)")
        let line = try #require(try cli.jsonLines(r.stdout).first)
        close(try #require(line["embedding"] as? [Double]).map { Float($0) }, ref.embeddings[0], "\(name) via t5 embed")
    }

    @Test func embedCommandMatchesTransformers() throws {
        let ref = try #require(try Self.reference.get().encoders["t5-encoder-tiny"])
        let dir = Fixtures.modelDirectory("t5-encoder-tiny").path
        let c = ref.cases[0]
        for (flags, expected) in [([String](), c.mean), (["--pooling", "first"], c.first), (["--pad-to", "16", "--no-attention-mask"], c.padded_mean)] {
            let r = try cli.run(["embed", "--model", dir, "--json"] + flags + [c.text])
            #expect(r.status == 0, "\(r)")
            let line = try #require(try cli.jsonLines(r.stdout).first)
            #expect(line["text"] as? String == c.text)
            close(try #require(line["embedding"] as? [Double]).map { Float($0) }, expected, "t5 embed \(flags)")
        }
        let r = try cli.run(["embed", "--model", dir, "--json", "--pooling", "none"], stdin: ref.cases.map(\.text).joined(separator: "\n") + "\n")
        let lines = try cli.jsonLines(r.stdout)
        #expect(lines.count == ref.cases.count)
        for (line, c) in zip(lines, ref.cases) {
            let rows = try #require(line["hidden"] as? [[Double]])
            close(rows.flatMap { $0.map { Float($0) } }, c.hidden.flatMap { $0 }, "t5 embed --pooling none")
        }
        // --output: one safetensors file, never over an existing file.
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("t5-embed-\(UUID().uuidString).safetensors")
        let w = try cli.run(["embed", "--model", dir, "--output", out.path], stdin: ref.cases.map(\.text).joined(separator: "\n") + "\n")
        #expect(w.status == 0 && w.stdout.isEmpty, "\(w)")
        let written = try SafeTensorsArchive(file: out).tensor("embeddings")
        #expect(written.shape == [ref.cases.count, 32])
        close(written.array, ref.cases.flatMap(\.mean), "--output embeddings")
        try cli.expectFailure(["embed", "--model", dir, "--output", out.path, "a"], "\(out.path) already exists")
    }

    @Test func encoderOnlyRefusalsAreOneLine() throws {
        let dir = Fixtures.modelDirectory("t5-encoder-tiny").path
        let message = "this checkpoint is encoder-only (T5EncoderModel)"
        try cli.expectFailure(["generate", "--model", dir, "hello"], message)
        try cli.expectFailure(["score", "--model", dir, "--input", "a", "--target", "b"], message)
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("t5-embed-\(UUID().uuidString).tsv")
        try Data("a\tb\n".utf8).write(to: data)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("t5-embed-\(UUID().uuidString)")
        try cli.expectFailure(["finetune", "--model", dir, "--train", data.path, "--out", out.path, "--steps", "1"], message)
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("model.safetensors").path))
        // Flags that make no sense together, and flags a sentence-transformers directory decides itself.
        try cli.expectFailure(["embed", "--model", dir, "--pad-to", "8", "a"], "--no-attention-mask")
        try cli.expectFailure(["embed", "--model", dir, "--no-attention-mask", "a"], "--pad-to")
        try cli.expectFailure(["embed", "--model", dir, "--pooling", "none", "--normalize", "a"], "--normalize")
        try cli.expectFailure(["embed", "--model", Fixtures.modelDirectory("st-t5-mean").path, "--pooling", "first", "a"], "sentence-transformers model")
        try cli.expectFailure(["embed", "--model", dir, "--max-input-tokens", "2", "hello world"], "more than --max-input-tokens 2")
    }

    @Test func anEncoderOnlyClassWithDecoderTensorsIsRefused() throws {
        let dir = try cli.scratchModel("t5v11-gated-gelu")
        let url = dir.appendingPathComponent("config.json")
        var config = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        config["architectures"] = ["T5EncoderModel"]
        try JSONSerialization.data(withJSONObject: config).write(to: url)
        try cli.expectFailure(["embed", "--model", dir.path, "a"], "architectures names T5EncoderModel, an encoder-only model, but the checkpoint has tensors it does not use")
    }

    @Test func malformedSentenceTransformerFilesAreNamed() throws {
        let dir = try cli.scratchModel("st-t5-cls")
        try Data("{\"pooling_mode\": \"max\"}".utf8).write(to: dir.appendingPathComponent("1_Pooling/config.json"))
        try cli.expectFailure(["embed", "--model", dir.path, "a"], "1_Pooling/config.json: invalid configuration: pooling_mode 'max' is not supported")
        try Data("[{\"type\": \"sentence_transformers.models.CNN\", \"path\": \"\"}]".utf8).write(to: dir.appendingPathComponent("modules.json"))
        try cli.expectFailure(["embed", "--model", dir.path, "a"], "module type sentence_transformers.models.CNN is not supported")
        try Data("[{".utf8).write(to: dir.appendingPathComponent("modules.json"))
        try cli.expectFailure(["embed", "--model", dir.path, "a"], "modules.json: invalid configuration: malformed JSON")
    }
}
