import Foundation
import Testing
@testable import T5

/// `t5 pretrain` and `t5 finetune --pretrain-text` as scripts use them: --print-examples, the output layout,
/// exact --resume, and bad input refused in one line before anything is written.
@Suite struct PretrainCLITests {
    static let model = Fixtures.modelDirectory("t5-relu-tied").path
    let cli = FinetuneCLITests()

    static func corpusFile(_ name: String) -> String { CorpusTests.path(name) }

    /// A plain and a compressed corpus of seeded word documents.
    func corpus() throws -> (txt: String, gz: String, dir: URL) {
        let files = try CorpusTests().corpus()
        let dir = URL(fileURLWithPath: files[0]).deletingLastPathComponent()
        let gz = dir.appendingPathComponent("docs.txt.gz").path
        try FileManager.default.copyItem(atPath: Self.corpusFile("docs.txt.gz"), toPath: gz)
        return (files[0], gz, dir)
    }

    func expectFailure(_ arguments: [String], _ fragment: String, status: Int32? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try cli.run(["pretrain"] + arguments)
        #expect(r.status != 0, "expected failure for \(arguments)", sourceLocation: sourceLocation)
        if let status { #expect(r.status == status, "status \(r.status) for \(arguments)", sourceLocation: sourceLocation) }
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr should be one line, got: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(fragment), "stderr \(r.stderr.debugDescription) lacks \(fragment.debugDescription)", sourceLocation: sourceLocation)
    }

    @Test func printExamplesShowsWhatTrainingSeesAndWritesNothing() throws {
        let (txt, _, dir) = try corpus()
        let out = dir.appendingPathComponent("never")
        let r = try cli.run(["pretrain", "--model", Self.model, "--text", txt, "--input-length", "20", "--print-examples", "11",
                             "--batch-size", "4", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 11)
        let tokenizer = try TokenizerDirectory.load(URL(fileURLWithPath: Self.model))
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(Set(object.keys) == ["source_ids", "input_ids", "target_ids", "input", "target"])
            let source = try #require(object["source_ids"] as? [Int]), input = try #require(object["input_ids"] as? [Int])
            let target = try #require(object["target_ids"] as? [Int])
            #expect(input.count == 20 && input.last == 1 && target.last == 1)
            #expect(SpanCorruptionTests.interleave(input: input, target: target, tokenizer: tokenizer) == source)
            #expect((object["input"] as? String)?.contains("<extra_id_0>") == true)
            #expect((object["target"] as? String)?.hasPrefix("<extra_id_0>") == true)
        }
        // The same seed gives the same examples; another seed other masks or order.
        let again = try cli.run(["pretrain", "--model", Self.model, "--text", txt, "--input-length", "20", "--print-examples", "11", "--batch-size", "4"])
        #expect(again.stdout == r.stdout)
        let other = try cli.run(["pretrain", "--model", Self.model, "--text", txt, "--input-length", "20", "--print-examples", "11", "--batch-size", "4", "--seed", "7"])
        #expect(other.status == 0 && other.stdout != r.stdout)
    }

    @Test func trainsAndResumesExactlyAcrossPools() throws {
        let (txt, gz, dir) = try corpus()
        // The fixture corpus (a plain and a compressed copy) holds 12 chunks of 17 tokens: pools of 6 batches of 2,
        // one pass per 2 pools. The first run stops in the second pool (its corpus position saved), the resumed
        // run goes on into the second pass.
        let common = ["pretrain", "--model", Self.model, "--text", Self.corpusFile("docs.txt"), "--text", gz, "--input-length", "16",
                      "--batch-size", "2", "--quiet", "--optimizer", "adamw", "--lr", "1e-3"]
        let straight = dir.appendingPathComponent("straight"), split = dir.appendingPathComponent("split")
        var r = try cli.run(common + ["--steps", "13", "--out", straight.path, "--valid-text", Self.corpusFile("docs.jsonl"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(summary["step"] as? Int == 13 && summary["eval_loss"] is Double)
        for name in ["config.json", "model.safetensors", "spiece.model", "metrics.jsonl", "checkpoint-13"] {
            #expect(FileManager.default.fileExists(atPath: straight.appendingPathComponent(name).path), "\(name)")
        }
        r = try cli.run(common + ["--steps", "7", "--out", split.path])
        #expect(r.status == 0, "\(r.stderr)")
        let state = try String(contentsOf: split.appendingPathComponent("checkpoint-7/trainer_state.json"), encoding: .utf8)
        #expect(state.contains("\"corpus\" : {"), "the corpus position is saved: \(state)")
        r = try cli.run(common + ["--steps", "13", "--out", split.path, "--resume"])
        #expect(r.status == 0, "\(r.stderr)")
        let a = try Data(contentsOf: straight.appendingPathComponent("model.safetensors"))
        let b = try Data(contentsOf: split.appendingPathComponent("model.safetensors"))
        #expect(a == b, "a resumed run must give the same weights")
        // A changed corpus is refused on resume, naming the setting.
        let changed = try cli.run(["pretrain", "--model", Self.model, "--text", txt, "--input-length", "16", "--batch-size", "2",
                                   "--quiet", "--optimizer", "adamw", "--lr", "1e-3", "--steps", "15", "--out", split.path, "--resume"])
        #expect(changed.status == 1 && changed.stderr.contains("train[0] was span corruption"))
    }

    @Test func badInputIsRefusedInOneLineBeforeWriting() throws {
        let (txt, _, dir) = try corpus()
        let out = dir.appendingPathComponent("out").path
        let base = ["--model", Self.model, "--out", out, "--steps", "1"]
        try expectFailure(base + ["--text", Self.corpusFile("empty.txt")], "holds no text", status: 1)
        try expectFailure(base + ["--text", Self.corpusFile("bad-utf8.txt")], "bad-utf8.txt:3: not valid UTF-8 text (byte offset 32)", status: 1)
        try expectFailure(base + ["--text", Self.corpusFile("corrupt.txt.gz")], "corrupt.txt.gz: cannot read: corrupt gzip data", status: 1)
        try expectFailure(base + ["--text", Self.corpusFile("truncated.txt.gz")], "truncated", status: 1)
        try expectFailure(base + ["--text", txt, "--input-length", "2"], "--input-length: must be at least 3", status: 64)
        try expectFailure(base + ["--text", txt, "--input-length", "6"], "--input-length: 6 is too small", status: 64)
        try expectFailure(base + ["--text", txt, "--noise-density", "0"], "--noise-density: must be in (0, 1)", status: 64)
        try expectFailure(base + ["--text", txt, "--noise-density", "1"], "--noise-density: must be in (0, 1)", status: 64)
        try expectFailure(base + ["--text", txt, "--mean-span-length", "0.5"], "--mean-span-length: must be at least 1", status: 64)
        try expectFailure(base + ["--text", txt, "--input-length", "512", "--noise-density", "0.3", "--mean-span-length", "1"],
                          "needs 153 sentinels", status: 1)
        try expectFailure(base + ["--text", Self.corpusFile("docs.txt"), "--input-length", "200"], "fewer than one chunk", status: 1)
        try expectFailure(["--model", Self.model, "--text", txt], "missing --out", status: 64)
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func finetuneMixesSpanCorruptionIn() throws {
        let data = try cli.data()
        let (txt, _, _) = try corpus()
        let out = data.appendingPathComponent("mixed")
        var r = try cli.run(["finetune", "--model", Self.model, "--train", "reverse: =" + data.appendingPathComponent("reverse.jsonl").path,
                             "--pretrain-text", txt, "--pretrain-weight", "0.25", "--max-input-tokens", "16", "--steps", "2",
                             "--batch-size", "4", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("sampled 25.0%") && r.stderr.contains("sampled 75.0%"), "\(r.stderr)")
        #expect(r.stderr.contains("chunks of"))
        let state = try String(contentsOf: out.appendingPathComponent("checkpoint-2/trainer_state.json"), encoding: .utf8)
        #expect(state.contains("span corruption: input 16"))
        r = try cli.run(["finetune", "--model", Self.model, "--train", data.appendingPathComponent("reverse.jsonl").path,
                         "--pretrain-weight", "0.5", "--out", data.appendingPathComponent("x").path])
        #expect(r.status == 64 && r.stderr.contains("--pretrain-weight needs --pretrain-text"))
        r = try cli.run(["finetune", "--model", Self.model, "--train", data.appendingPathComponent("reverse.jsonl").path,
                         "--pretrain-text", txt, "--pretrain-weight", "1", "--out", data.appendingPathComponent("x").path])
        #expect(r.status == 64 && r.stderr.contains("--pretrain-weight: must be in (0, 1)"))
    }
}
