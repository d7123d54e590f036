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

    @Test func otherFormatsPointToTheConverter() throws {
        let dir = try scratchDirectory("convert-bin")
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["config.json", "spiece.model"] {
            try FileManager.default.copyItem(at: Fixtures.modelDirectory("t5-relu-tied").appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        try Data("not really torch".utf8).write(to: dir.appendingPathComponent("pytorch_model.bin"))
        try cli.expectFailure(["generate", "--model", dir.path, "hi"], "pytorch_model.bin: cannot read: this runtime reads safetensors only; convert the directory with `python3 tools/convert.py")
    }
}
