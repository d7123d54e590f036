import Foundation
import Testing
@testable import T5

/// The one model-directory writer against what transformers' `save_pretrained` wrote (the fixtures, made by
/// tools/make_*_fixtures.py): the same bytes, file for file.
@Suite struct ModelDirectoryTests {
    /// A fixture's fp32 values, written back through `ModelDirectory`, are its files byte for byte: the
    /// safetensors (header order, padding, data), config.json, the tokenizer and generation_config.json.
    @Test(arguments: ["t5-relu-tied", "t5v11-gated-gelu", "umt5-tiny"])
    func writtenDirectoryIsWhatSavePretrainedWrote(name: String) throws {
        let source = Fixtures.modelDirectory(name)
        let config = try T5Config.load(from: source.appendingPathComponent("config.json"))
        let archive = try SafeTensorsArchive(directory: source)
        let specs = T5Parameters.specs(for: config, separateLMHead: archive.keys.contains("lm_head.weight"))
        var values = [String: Tensor]()
        for spec in specs { values[spec.key] = try archive.tensor(spec.key) }
        let out = try scratchDirectory("model-directory")
        defer { try? FileManager.default.removeItem(at: out) }
        try ModelDirectory.copying(from: source, config: config).write(weights: values, specs: specs, to: out)
        let written = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        #expect(written == ["config.json", "generation_config.json", "model.safetensors", "spiece.model"])
        for file in written {
            #expect(try Data(contentsOf: out.appendingPathComponent(file)) == Data(contentsOf: source.appendingPathComponent(file)), "\(name): \(file)")
        }
    }

    /// An encoder-only model cannot generate: `save_pretrained` writes no generation_config.json for it, and
    /// neither does the writer, whichever way the weights are given.
    @Test func anEncoderOnlyModelGetsNoGenerationConfig() throws {
        let source = Fixtures.modelDirectory("t5-encoder-tiny")
        let model = try T5Model(directory: source, packWeights: false)
        let files = ModelDirectory(config: model.config, tokenizer: model.tokenizer)
        let out = try scratchDirectory("model-directory-encoder")
        defer { try? FileManager.default.removeItem(at: out) }
        try files.write(model, to: out.appendingPathComponent("converted"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("converted").path).sorted()
                == ["config.json", "model.safetensors", "spiece.model"])
        let specs = T5Parameters.specs(for: model.config, separateLMHead: false, decoder: false)
        let archive = try SafeTensorsArchive(directory: source)
        var values = [String: Tensor]()
        for spec in specs { values[spec.key] = try archive.tensor(spec.key) }
        try files.write(weights: values, specs: specs, to: out.appendingPathComponent("values"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("values").path).sorted()
                == ["config.json", "model.safetensors", "spiece.model"])
        #expect(try T5Model(directory: out.appendingPathComponent("values")).hasDecoder == false)
    }

    /// A model is written into a new or empty directory only: beside a user's file, nothing is written.
    @Test func aModelIsNeverWrittenBesideFilesWeDidNotWrite() throws {
        let model = try Fixtures.model("t5-relu-tied")
        let out = try scratchDirectory("model-directory-foreign")
        defer { try? FileManager.default.removeItem(at: out) }
        try Data("mine".utf8).write(to: out.appendingPathComponent("notes.txt"))
        #expect(throws: T5Error.self) { try ModelDirectory(config: model.config, tokenizer: model.tokenizer).write(model, to: out) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path) == ["notes.txt"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.deletingLastPathComponent().path).allSatisfy { !$0.hasPrefix(".\(out.lastPathComponent)") })
    }

    /// An encoder-only model converted to int8 is an int8 directory every time. (d1c099f took the mark from
    /// whichever matrix its dictionary listed first, the fp32 embedding standing in for the missing head or an
    /// int8 projection, so about one run in three wrote I8 tensors into model.safetensors marked fp32, which
    /// transformers would load as float weights.) Each run is a new process, with its own hash seed.
    @Test func anEncoderOnlyInt8ConversionIsMarkedInt8EveryTime() throws {
        let cli = CLITests()
        let dir = try scratchDirectory("model-directory-encoder-int8")
        defer { try? FileManager.default.removeItem(at: dir) }
        for run in 0..<6 {
            let out = dir.appendingPathComponent("int8-\(run)")
            let r = try cli.run(["convert", "--model", Fixtures.modelDirectory("t5-encoder-tiny").path, "--weights", "int8", "--out", out.path])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).sorted() == ["config.json", "model.int8.safetensors", "spiece.model"])
            let info = try cli.run(["info", "--model", out.path])
            #expect(info.stdout.contains("saved:        int8 projections by t5 convert"), "\(info.stdout)")
        }
    }

    /// A value missing from the table's tensors is refused before anything is written.
    @Test func aMissingValueIsRefusedByName() throws {
        let source = Fixtures.modelDirectory("t5-relu-tied")
        let config = try T5Config.load(from: source.appendingPathComponent("config.json"))
        let specs = T5Parameters.specs(for: config, separateLMHead: false)
        let out = try scratchDirectory("model-directory-missing")
        defer { try? FileManager.default.removeItem(at: out) }
        #expect(throws: T5Error.writeFailed(path: out.path, reason: "no value for tensor shared.weight")) {
            try ModelDirectory.copying(from: source, config: config).write(weights: [:], specs: specs, to: out)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).isEmpty)
    }
}
