import Foundation
import Testing
@testable import T5

/// `t5 distill` as scripts use it: --alpha 1 is t5 finetune bit for bit, --resume is exact, --student-init
/// teacher copies the chosen blocks bit for bit, and bad input is one line before anything is written.
@Suite struct DistillCLITests {
    /// 2 encoder and 3 decoder blocks, vocab 484; t5-relu-tied (vocab 512) shares its tokenizer file but not its vocab_size.
    static let teacher = Fixtures.modelDirectory("t5v11-gated-gelu").path
    let cli = FinetuneCLITests()

    func arguments(_ data: URL, out: URL, student: [String] = ["--student", Self.teacher]) -> [String] {
        ["--teacher", Self.teacher] + student + [
            "--train", "reverse: =\(data.appendingPathComponent("reverse.jsonl").path)",
            "--out", out.path, "--batch-size", "4", "--optimizer", "adamw", "--lr", "1e-2", "--seed", "7", "--threads", "1", "--quiet"]
    }

    @Test func alphaOneIsFinetuneBitForBit() throws {
        let data = try cli.data()
        defer { try? FileManager.default.removeItem(at: data) }
        let tuned = data.appendingPathComponent("tuned"), distilled = data.appendingPathComponent("distilled")
        let common = ["--train", "reverse: =\(data.appendingPathComponent("reverse.jsonl").path)", "--batch-size", "4",
                      "--optimizer", "adamw", "--lr", "1e-2", "--seed", "7", "--threads", "1", "--quiet", "--steps", "3",
                      "--dropout", "0.1", "--grad-accum", "2"]
        let f = try cli.run(["finetune", "--model", Self.teacher, "--out", tuned.path] + common)
        #expect(f.status == 0, "\(f.stderr)")
        let d = try cli.run(["distill", "--teacher", Fixtures.modelDirectory("t5v11-gated-gelu").path, "--student", Self.teacher,
                             "--alpha", "1", "--out", distilled.path] + common)
        #expect(d.status == 0, "\(d.stderr)")
        #expect(try Data(contentsOf: tuned.appendingPathComponent("model.safetensors"))
                == Data(contentsOf: distilled.appendingPathComponent("model.safetensors")), "--alpha 1 differs from finetune")
        // With the teacher's term the same run ends elsewhere.
        let soft = data.appendingPathComponent("soft")
        #expect(try cli.run(["distill", "--teacher", Self.teacher, "--student", Self.teacher, "--out", soft.path] + common).status == 0)
        #expect(try Data(contentsOf: soft.appendingPathComponent("model.safetensors"))
                != Data(contentsOf: tuned.appendingPathComponent("model.safetensors")))
    }

    @Test func resumeContinuesExactly() throws {
        let data = try cli.data()
        defer { try? FileManager.default.removeItem(at: data) }
        let straight = data.appendingPathComponent("straight"), split = data.appendingPathComponent("split")
        let student = ["--student-init", "teacher", "--student-layers", "encoder=1,decoder=0,2"]
        #expect(try cli.run(["distill"] + arguments(data, out: straight, student: student) + ["--steps", "4"]).status == 0)
        #expect(try cli.run(["distill"] + arguments(data, out: split, student: student) + ["--steps", "2"]).status == 0)
        let other = try cli.run(["distill"] + arguments(data, out: split, student: student) + ["--steps", "4", "--resume", "--alpha", "0.5"])
        #expect(other.status != 0 && other.stderr.contains("alpha 0.2"), "\(other.stderr)")
        let resumed = try cli.run(["distill"] + arguments(data, out: split, student: student) + ["--steps", "4", "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try Data(contentsOf: straight.appendingPathComponent("model.safetensors"))
                == Data(contentsOf: split.appendingPathComponent("model.safetensors")), "resumed weights differ")
    }

    /// The copied student (OUT/student-init) holds the teacher's chosen tensors bit for bit; block 0 of the
    /// decoder, copied from teacher block 1, owns the teacher's relative bias.
    @Test func studentInitCopiesTheChosenBlocks() throws {
        let data = try cli.data()
        defer { try? FileManager.default.removeItem(at: data) }
        let out = data.appendingPathComponent("out")
        let r = try cli.run(["distill"] + arguments(data, out: out, student: ["--student-init", "teacher", "--student-layers", "decoder=1,2"])
                            + ["--steps", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        let teacher = try SafeTensorsArchive(directory: URL(fileURLWithPath: Self.teacher))
        let student = try SafeTensorsArchive(directory: out.appendingPathComponent("student-init"))
        let config = try T5Config.load(from: out.appendingPathComponent("student-init/config.json"))
        #expect(config.numLayers == 2 && config.numDecoderLayers == 2)
        for key in student.keys {
            var source = key
            if let b = T5Parameters.blockIndex(of: key, in: .decoder) {
                source = T5Parameters.renumbered(key, in: .decoder, to: T5Parameters.isRelativeBias(key) ? 0 : [1, 2][b])
            }
            #expect(try student.tensor(key).array.map(\.bitPattern) == teacher.tensor(source).array.map(\.bitPattern), "\(key) is not teacher's \(source)")
        }
        #expect(student.keys.contains("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"))
        #expect(Set(student.keys).count == T5Parameters.specs(for: config, separateLMHead: true).count)
    }

    @Test func badInputIsOneLineBeforeAnythingIsWritten() throws {
        let data = try cli.data()
        defer { try? FileManager.default.removeItem(at: data) }
        let out = data.appendingPathComponent("out")
        func expectFailure(_ extra: [String], student: [String] = ["--student", Self.teacher], status: Int32, _ fragment: String,
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
            let r = try cli.run(["distill"] + arguments(data, out: out, student: student) + extra)
            #expect(r.status == status, "\(extra): status \(r.status), \(r.stderr)", sourceLocation: sourceLocation)
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.hasPrefix("t5: "), "\(r.stderr)", sourceLocation: sourceLocation)
            #expect(r.stderr.contains(fragment), "\(r.stderr.debugDescription) lacks \(fragment.debugDescription)", sourceLocation: sourceLocation)
            #expect(!FileManager.default.fileExists(atPath: out.path), "\(extra) wrote \(out.path)", sourceLocation: sourceLocation)
        }
        try expectFailure(["--alpha", "1.5"], status: 64, "--alpha: must be in [0, 1], got 1.5")
        try expectFailure(["--alpha", "-0.1"], status: 64, "--alpha: must be in [0, 1]")
        try expectFailure(["--temperature", "0"], status: 64, "--temperature: must be a finite number above 0, got 0.0")
        try expectFailure(["--hidden-weight", "-1"], status: 64, "--hidden-weight: must be a finite number, at least 0, got -1.0")
        try expectFailure(["--hidden-weight", "1"], student: ["--student", Fixtures.modelDirectory("t5-relu-tied").path], status: 1,
                          "the student's vocab_size 512 differs from the teacher's 484")
        try expectFailure([], student: ["--student-init", "teacher", "--student-layers", "encoder=0,2"], status: 1,
                          "--student-layers: encoder layer 2 is out of range: the teacher's encoder has layers 0-1")
        try expectFailure([], student: ["--student-init", "teacher", "--student-layers", "decoder=1,1"], status: 1,
                          "--student-layers: decoder layer 1 is given twice")
        try expectFailure([], student: ["--student-init", "teacher", "--student-depth", "decoder=4"], status: 1,
                          "--student-depth: decoder=4 is deeper than the teacher's 3 decoder layers")
        try expectFailure([], student: ["--student-init", "teacher", "--student-layers", "middle=1"], status: 64, "'middle' is not a stack")
        try expectFailure([], student: [], status: 64, "give the student")
        try expectFailure([], student: ["--student", Fixtures.modelDirectory("t5-relu-tied").path], status: 1,
                          "the student's vocab_size 512 differs from the teacher's 484")
        try expectFailure(["--teacher", data.path], status: 1, "--teacher: \(data.path) is not a model to distill from")
        let wide = data.appendingPathComponent("wide.json")
        try Data(try String(contentsOfFile: Self.teacher + "/config.json", encoding: .utf8)
            .replacingOccurrences(of: "\"d_model\": 32", with: "\"d_model\": 48").utf8).write(to: wide)
        try expectFailure(["--hidden-weight", "1"], student: ["--student-config", wide.path], status: 1,
                          "--hidden-weight: the student's d_model 48 differs from the teacher's 32")
    }

    /// A bf16 teacher and a fresh --student-config student both train, and the student's config is the file's.
    @Test func bf16TeacherAndFreshStudent() throws {
        let data = try cli.data()
        defer { try? FileManager.default.removeItem(at: data) }
        let text = try String(contentsOfFile: Self.teacher + "/config.json", encoding: .utf8)
            .replacingOccurrences(of: "\"num_decoder_layers\": 3", with: "\"num_decoder_layers\": 1")
        let config = data.appendingPathComponent("student.json")
        try Data(text.utf8).write(to: config)
        let out = data.appendingPathComponent("out")
        let r = try cli.run(["distill"] + arguments(data, out: out, student: ["--student-config", config.path])
                            + ["--teacher-weights", "bf16", "--steps", "2", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"finished\":true"), "\(r.stdout)")
        #expect(try T5Config.load(from: out.appendingPathComponent("config.json")).numDecoderLayers == 1)
        // The hidden-state term on a copied student.
        let hidden = try cli.run(["distill"] + arguments(data, out: data.appendingPathComponent("hidden"),
                                                         student: ["--student-init", "teacher", "--student-layers", "decoder=0,2"])
                                 + ["--hidden-weight", "1", "--steps", "2"])
        #expect(hidden.status == 0, "\(hidden.stderr)")
    }

    /// --sequence-level: the teacher's beam outputs are generated once into OUT/teacher-targets.jsonl (one line
    /// per example after the header, each the teacher's own beam-search output), read back on --resume, and
    /// the resumed run equals the straight one bit for bit.
    @Test func sequenceLevelCachesTheTeachersOutputs() throws {
        let data = try cli.data()
        defer { try? FileManager.default.removeItem(at: data) }
        let straight = data.appendingPathComponent("straight"), split = data.appendingPathComponent("split")
        let extra = ["--sequence-level", "--teacher-beams", "2", "--max-target-tokens", "12"]
        let first = try cli.run(["distill"] + arguments(data, out: straight) + extra + ["--steps", "4"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try cli.run(["distill"] + arguments(data, out: split) + extra + ["--steps", "2"]).status == 0)
        let resumed = try cli.run(["distill"] + arguments(data, out: split).filter { $0 != "--quiet" } + extra + ["--steps", "4", "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("teacher targets: 24 read from \(split.path)/teacher-targets.jsonl"), "\(resumed.stderr)")
        #expect(try Data(contentsOf: straight.appendingPathComponent("model.safetensors"))
                == Data(contentsOf: split.appendingPathComponent("model.safetensors")), "resumed weights differ")

        let lines = try String(contentsOf: straight.appendingPathComponent("teacher-targets.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 25)
        let teacher = try T5Model(directory: URL(fileURLWithPath: Self.teacher))
        let task = try TaskData(source: TaskSource.parse("reverse: =\(data.appendingPathComponent("reverse.jsonl").path)"),
                                tokenizer: teacher.tokenizer, maxInputTokens: 512, maxTargetTokens: 12)
        var options = GenerationOptions(for: teacher)
        options.numBeams = 2
        options.maxNewTokens = 12
        let output = try teacher.generate(ids: [task.examples[0].inputIDs], options: options)[0][0].ids
        var expected = output.last == 1 ? output : Array(output.prefix(11)) + [1]
        if expected.isEmpty { expected = [1] }
        #expect(lines[1] == "{\"task\":0,\"ids\":[\(expected.map(String.init).joined(separator: ","))]}", "\(lines[1]) vs \(expected)")
    }
}

