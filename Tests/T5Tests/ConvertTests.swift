import Foundation
import Testing
@testable import T5

/// `t5 convert` through the real binary: what the directory holds is said, loaded by default as saved,
/// and a tokenizer that is not spiece.model (ByT5) comes along; formats this runtime cannot read point to
/// tools/convert.py.
@Suite struct ConvertTests {
    let cli = CLITests()

    @Test func int8DirectoriesSayWhatTheyHoldAndLoadAsSaved() throws {
        let dir = try scratchDirectory("convert-int8")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("int8")
        let r = try cli.run(["convert", "--model", Fixtures.modelDirectory("byt5-tiny").path, "--weights", "int8", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: out.path))
        #expect(names == ["config.json", "model.int8.safetensors", "tokenizer_config.json", "added_tokens.json", "generation_config.json"], "\(names)")
        let info = try cli.run(["info", "--model", out.path])
        #expect(info.stdout.contains("saved:        int8 projections by t5 convert"), "\(info.stdout)")
        #expect(info.stdout.contains("weights:      int8 projections in memory"), "\(info.stdout)")
        let forced = try cli.run(["info", "--model", out.path, "--weights", "f32"])
        #expect(forced.stdout.contains("weights:      f32 projections in memory"), "\(forced.stdout)")
        // The converted ByT5 model still tokenizes bytes and generates.
        let g = try cli.run(["generate", "--model", out.path, "--max-new-tokens", "3", "--json", "hé"])
        #expect(g.status == 0, "\(g.stderr)")
    }

    /// bf16 needs no mark: transformers 5.24 loads the BF16 projections as they are (checked by hand: its
    /// log-probabilities on a bf16 conversion of t5v11-gated-gelu agree with `t5 score`'s to 1e-5). Converting
    /// an int8 directory back to f32 gives a model.safetensors again, with no int8 file beside it.
    @Test func bf16AndBackToF32WriteModelSafetensors() throws {
        let dir = try scratchDirectory("convert-bf16")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = Fixtures.modelDirectory("t5v11-gated-gelu").path
        let bf16 = dir.appendingPathComponent("bf16"), int8 = dir.appendingPathComponent("int8"), back = dir.appendingPathComponent("f32")
        for (from, precision, out) in [(source, "bf16", bf16), (source, "int8", int8), (int8.path, "f32", back)] {
            let r = try cli.run(["convert", "--model", from, "--weights", precision, "--out", out.path])
            #expect(r.status == 0, "\(r.stderr)")
        }
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: bf16.path)).isSuperset(of: ["model.safetensors", "spiece.model"]))
        #expect(!FileManager.default.fileExists(atPath: bf16.appendingPathComponent("model.int8.safetensors").path))
        let info = try cli.run(["info", "--model", bf16.path])
        #expect(info.stdout.contains("saved:        bf16 projections by t5 convert"), "\(info.stdout)")
        #expect(info.stdout.contains("weights:      bf16 projections in memory"), "\(info.stdout)")
        #expect(info.stdout.contains("BF16 × 48"), "\(info.stdout)")
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: back.path))
        #expect(names.contains("model.safetensors") && !names.contains("model.int8.safetensors"), "\(names)")
        let backInfo = try cli.run(["info", "--model", back.path])
        #expect(backInfo.stdout.contains("saved:        fp32 by t5 convert"), "\(backInfo.stdout)")
        #expect(backInfo.stdout.contains("weights:      f32 projections in memory"), "\(backInfo.stdout)")
        // The int8 directory and its f32 copy compute the same int8-rounded weights.
        let arguments = ["score", "--json", "--input", "the dog walks", "--target", "der Hund"]
        let a = try cli.run([arguments[0], "--model", int8.path, "--weights", "f32"] + arguments.dropFirst())
        let b = try cli.run([arguments[0], "--model", back.path] + arguments.dropFirst())
        #expect(a.status == 0 && a.stdout == b.stdout, "\(a.stdout) \(b.stdout) \(a.stderr)")
    }

    @Test func otherFormatsPointToTheConverter() throws {
        let dir = try scratchDirectory("convert-bin")
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["config.json", "spiece.model"] {
            try FileManager.default.copyItem(at: Fixtures.modelDirectory("t5-relu-tied").appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        // Each of the weight files transformers reads besides safetensors, alone in the directory.
        for name in ["pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack"] {
            let file = dir.appendingPathComponent(name)
            try Data("not really \(name)".utf8).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            for command in [["generate", "hi"], ["info"], ["embed", "hi"]] {
                try cli.expectFailure([command[0], "--model", dir.path] + command.dropFirst(),
                                      "\(file.path): cannot read: this runtime reads safetensors only; convert the directory with `python3 tools/convert.py \(dir.path) OUT_DIR`")
            }
        }
        // With no weights at all the missing file is named as before.
        try cli.expectFailure(["generate", "--model", dir.path, "hi"], "model.safetensors: no such file or directory")
    }
}
