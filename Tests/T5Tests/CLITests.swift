import Foundation
import Testing
@testable import T5

/// Runs the built `t5` binary the way scripts do and checks exit codes, JSON on stdout and the one-line
/// error on stderr.
@Suite struct CLITests {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static var binary: URL {
        // The test bundle and the `t5` executable are built into the same products directory.
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = bundle.deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("t5")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return bundle.deletingLastPathComponent().appendingPathComponent("t5")
    }

    func run(_ arguments: [String], stdin: String? = nil) throws -> Result {
        try run(arguments, stdinBytes: stdin.map { Data($0.utf8) })
    }

    func run(_ arguments: [String], stdinBytes stdin: Data?, environment: [String: String]? = nil, directory: URL? = nil) throws -> Result {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try input.fileHandleForWriting.close()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    /// A failing run: non-zero exit, exactly one line on stderr containing `fragment`, nothing on stdout.
    func expectFailure(_ arguments: [String], _ fragment: String, stdin: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try run(arguments, stdin: stdin)
        #expect(r.status != 0, "expected failure for \(arguments)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count == 1, "stderr should be one line, got: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(fragment), "stderr \(r.stderr.debugDescription) lacks \(fragment.debugDescription)", sourceLocation: sourceLocation)
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Stack dump"), sourceLocation: sourceLocation)
    }

    func jsonLines(_ s: String) throws -> [[String: Any]] {
        try s.split(separator: "\n").map { line in
            try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    /// A scratch copy of a fixture model that a test may damage.
    func scratchModel(_ name: String = "t5-relu-tied") throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("t5-cli-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Fixtures.modelDirectory(name), to: dir)
        return dir
    }

    @Test func generateJSONMatchesTransformers() throws {
        let name = "t5v11-gated-gelu"
        let ref = try Fixtures.reference(ModelReference.self, "reference/\(name).json")
        let cases = ref.greedy.filter { $0.min_new_tokens == 0 && $0.repetition_penalty == 1 && $0.no_repeat_ngram_size == 0 }
        let c = try #require(cases.first)
        let r = try run(["generate", "--model", Fixtures.modelDirectory(name).path, "--max-new-tokens", "\(c.max_new_tokens)", "--json", c.input])
        #expect(r.status == 0, "\(r.stderr)")
        let objects = try jsonLines(r.stdout)
        #expect(objects.count == 1)
        let outputs = try #require(objects.first?["outputs"] as? [[String: Any]])
        #expect((outputs.first?["ids"] as? [Int]) == c.ids)
        let score = try #require((outputs.first?["score"] as? NSNumber)?.floatValue)
        #expect(abs(score - c.score) <= 1e-4 * max(1, abs(c.score)))
        #expect((objects.first?["input"] as? String) == c.input)
    }

    @Test func generateReadsStdinInOrderAndBeams() throws {
        let name = "t5-relu-tied"
        let ref = try Fixtures.reference(ModelReference.self, "reference/\(name).json")
        let c = try #require(ref.beam.first { $0.min_new_tokens == 0 })
        var args = ["generate", "--model", Fixtures.modelDirectory(name).path, "--json",
                    "--beams", "\(c.num_beams)", "--num-return-sequences", "\(c.num_return_sequences)",
                    "--length-penalty", "\(c.length_penalty)", "--max-new-tokens", "\(c.max_new_tokens)"]
        switch c.early_stopping.value {
        case .always: args.append("--early-stopping")
        case .never: args.append("--never-stop-early")
        case .heuristic: break
        }
        let inputs = [c.input, "summarize: second line", c.input]
        let r = try run(args, stdin: inputs.joined(separator: "\n") + "\n")
        #expect(r.status == 0, "\(r.stderr)")
        let objects = try jsonLines(r.stdout)
        #expect(objects.map { $0["input"] as? String } == inputs)
        for i in [0, 2] {
            let outputs = try #require(objects[i]["outputs"] as? [[String: Any]])
            #expect(outputs.map { $0["ids"] as? [Int] ?? [] } == c.outputs.map(\.ids))
        }
    }

    @Test func scoreJSONMatchesTransformers() throws {
        let name = "t5-relu-tied"
        let c = try #require(Fixtures.reference(ModelReference.self, "reference/\(name).json").score.first)
        let r = try run(["score", "--model", Fixtures.modelDirectory(name).path, "--input", c.input, "--target", c.target, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try jsonLines(r.stdout).first)
        #expect((object["ids"] as? [Int]) == c.target_ids)
        let logprobs = (object["logprobs"] as? [NSNumber])?.map(\.floatValue) ?? []
        #expect(firstMismatch(logprobs, c.logprobs, tolerance: 1e-4) == nil)
    }

    @Test func tokenizeJSONMatchesTransformers() throws {
        struct Case: Decodable { let text: String; let ids: [Int]; let pieces: [String] }
        struct File: Decodable { let encode: [Case] }
        let cases = try Fixtures.reference(File.self, "reference/tokenizer.json").encode.prefix(12)
        let r = try run(["tokenize", "--model", Fixtures.modelDirectory("t5-relu-tied").path, "--json"] + cases.map(\.text))
        #expect(r.status == 0, "\(r.stderr)")
        let objects = try jsonLines(r.stdout)
        #expect(objects.count == cases.count)
        for (o, c) in zip(objects, cases) {
            #expect((o["ids"] as? [Int]) == c.ids, "\(c.text.debugDescription)")
            #expect((o["pieces"] as? [String]) == c.pieces, "\(c.text.debugDescription)")
        }
    }

    @Test func infoDescribesTheVariant() throws {
        let r = try run(["info", "--model", Fixtures.modelDirectory("t5v11-gated-gelu").path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("gated-gelu_new") || r.stdout.contains("gated"))
        #expect(r.stdout.contains("separate lm_head.weight"))
        #expect(r.stdout.contains("encoder 2, decoder 3"))
    }

    @Test func missingModelDirectory() throws {
        try expectFailure(["generate", "--model", "/nonexistent/model", "hello"], "/nonexistent/model")
    }

    /// A file where a model directory belongs is named as such by every command, not by the first file each
    /// one reads inside it.
    @Test func aFileIsNotAModelDirectory() throws {
        for command in [["tokenize", "x"], ["generate", "x"], ["info"], ["score", "--input", "x", "--target", "y"], ["embed", "x"]] {
            try expectFailure(command + ["--model", "/dev/null"], "/dev/null: cannot read: not a directory")
        }
    }

    @Test func malformedConfig() throws {
        let dir = try scratchModel()
        try Data("{\"d_model\": 32,".utf8).write(to: dir.appendingPathComponent("config.json"))
        try expectFailure(["generate", "--model", dir.path, "hello"], "config.json")
    }

    @Test func unknownActivation() throws {
        let dir = try scratchModel()
        let url = dir.appendingPathComponent("config.json")
        var config = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        // transformers lets a saved dense_act_fn / is_gated_act override feed_forward_proj; drop them.
        config["feed_forward_proj"] = "gated-swishy"
        config.removeValue(forKey: "dense_act_fn")
        config.removeValue(forKey: "is_gated_act")
        try JSONSerialization.data(withJSONObject: config).write(to: url)
        try expectFailure(["generate", "--model", dir.path, "hello"], "swishy")
    }

    @Test func truncatedSafetensors() throws {
        let dir = try scratchModel()
        let url = dir.appendingPathComponent("model.safetensors")
        try Data(try Data(contentsOf: url).prefix(5)).write(to: url)
        try expectFailure(["generate", "--model", dir.path, "hello"], "model.safetensors")
    }

    @Test func offsetsPastTheEndOfTheFile() throws {
        let dir = try scratchModel()
        let url = dir.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: url)
        try Data(data.prefix(data.count - 64)).write(to: url)
        try expectFailure(["generate", "--model", dir.path, "hello"], "model.safetensors")
    }

    @Test func missingSentencePieceModel() throws {
        let dir = try scratchModel()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("spiece.model"))
        try expectFailure(["generate", "--model", dir.path, "hello"], "spiece.model")
    }

    @Test func missingAndMisshapedTensors() throws {
        // A config with more layers than the file is refused before the parameter table is built from it, a
        // config with another d_ff finds tensors wrongly shaped.
        let dir = try scratchModel()
        let url = dir.appendingPathComponent("config.json")
        var config = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        config["num_layers"] = 3
        try JSONSerialization.data(withJSONObject: config).write(to: url)
        try expectFailure(["generate", "--model", dir.path, "hello"], "num_layers is 3 but the checkpoint has 2 encoder blocks")
        config["num_layers"] = 2
        config["d_ff"] = 65
        try JSONSerialization.data(withJSONObject: config).write(to: url)
        try expectFailure(["generate", "--model", dir.path, "hello"], "expected shape [65, 32]")
    }

    @Test func inputLongerThanTheLimit() throws {
        try expectFailure(["generate", "--model", Fixtures.modelDirectory("t5-relu-tied").path, "--max-input-tokens", "3",
                           "summarize: this input has more than three tokens"], "--max-input-tokens 3")
    }

    @Test(arguments: [
        (["--beams", "0"], "--beams"),
        (["--top-p", "1.5", "--sample"], "--top-p"),
        (["--top-p", "0", "--sample"], "--top-p"),
        (["--temperature", "0", "--sample"], "--temperature"),
        (["--max-new-tokens", "0"], "--max-new-tokens"),
        (["--beams", "2", "--num-return-sequences", "3"], "--num-return-sequences"),
        (["--no-repeat-ngram-size", "-1"], "--no-repeat-ngram-size"),
        (["--beams", "abc"], "--beams"),
    ])
    func invalidFlags(flags: [String], fragment: String) throws {
        try expectFailure(["generate", "--model", Fixtures.modelDirectory("t5-relu-tied").path] + flags + ["hello"], fragment)
    }
}
