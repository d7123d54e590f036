import Foundation
import Testing
@testable import T5

/// `t5 finetune` as scripts use it: exit codes, one-line errors naming file and line, the output
/// directory, resuming, and what a kill at any moment leaves behind.
@Suite struct FinetuneCLITests {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static let model = Fixtures.modelDirectory("t5-relu-tied").path

    @discardableResult
    func run(_ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Fails with exactly one stderr line containing `fragment`.
    func expectFailure(_ arguments: [String], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try run(["finetune"] + arguments)
        #expect(r.status != 0, "expected failure for \(arguments)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr should be one line, got: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(fragment), "stderr \(r.stderr.debugDescription) lacks \(fragment.debugDescription)", sourceLocation: sourceLocation)
        #expect(!r.stderr.contains("Fatal error"), sourceLocation: sourceLocation)
    }

    /// A directory with small reverse (JSON Lines) and sort (TSV) tasks and their validation files.
    func data() throws -> URL {
        let dir = try scratchDirectory("cli-data")
        var generator = SeededGenerator(seed: 3)
        func digits() -> [Int] { (0..<(3 + generator.uniformIndex(below: 3))).map { _ in generator.uniformIndex(below: 10) } }
        func text(_ d: [Int]) -> String { d.map(String.init).joined(separator: " ") }
        var reverse = "", sort = "", valid = ""
        for i in 0..<24 {
            let d = digits()
            reverse += "{\"input\": \"\(text(d))\", \"target\": \"\(text(d.reversed()))\"}\n"
            if i == 5 { reverse += "\n" }  // an empty line, skipped and counted
            sort += "\(text(d))\t\(text(d.sorted()))\n"
        }
        for _ in 0..<6 {
            let d = digits()
            valid += "{\"input\": \"\(text(d))\", \"target\": \"\(text(d.reversed()))\"}\n"
        }
        try Data(reverse.utf8).write(to: dir.appendingPathComponent("reverse.jsonl"))
        try Data(sort.utf8).write(to: dir.appendingPathComponent("sort.tsv"))
        try Data(valid.utf8).write(to: dir.appendingPathComponent("reverse.valid.jsonl"))
        return dir
    }

    func baseArguments(_ data: URL, out: URL) -> [String] {
        ["finetune", "--model", Self.model,
         "--train", "reverse: =\(data.appendingPathComponent("reverse.jsonl").path)",
         "--train", "sort: =\(data.appendingPathComponent("sort.tsv").path)",
         "--out", out.path, "--batch-size", "4", "--optimizer", "adamw", "--lr", "1e-2", "--seed", "7", "--threads", "1"]
    }

    @Test func badDataIsAOneLineErrorWithFileAndLine() throws {
        let dir = try scratchDirectory("cli-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out").path
        func file(_ name: String, _ text: String) throws -> String {
            let url = dir.appendingPathComponent(name)
            try Data(text.utf8).write(to: url)
            return url.path
        }
        let malformed = try file("m.jsonl", "{\"input\": \"a\", \"target\": \"b\"}\n\n{\"input\": \"a\" \"target\": \"b\"}\n")
        try expectFailure(["--model", Self.model, "--train", malformed, "--out", out], "\(malformed):3: malformed JSON")
        let missing = try file("f.jsonl", "{\"input\": \"a\", \"target\": \"b\"}\n{\"input\": \"a\"}\n")
        try expectFailure(["--model", Self.model, "--train", missing, "--out", out], "\(missing):2: missing field \"target\"")
        let empty = try file("e.jsonl", "")
        try expectFailure(["--model", Self.model, "--train", "x: =\(empty)", "--out", out], "\(empty):1: the file is empty")
        let columns = try file("c.tsv", "a\tb\nc\n")
        try expectFailure(["--model", Self.model, "--train", columns, "--out", out], "\(columns):2: expected 2 tab-separated columns")
        let good = try file("g.tsv", "a\tb\n")
        try expectFailure(["--model", Self.model, "--train", good, "--valid", missing, "--out", out], "\(missing):2: missing field")
        try expectFailure(["--model", Self.model, "--train", dir.appendingPathComponent("none.jsonl").path, "--out", out], "none.jsonl: no such file")
        #expect(!FileManager.default.fileExists(atPath: out), "nothing is written for bad data")
    }

    @Test func badFlagsAreOneLineErrors() throws {
        let data = try data()
        defer { try? FileManager.default.removeItem(at: data) }
        let out = data.appendingPathComponent("out").path
        let train = data.appendingPathComponent("sort.tsv").path
        let common = ["--model", Self.model, "--out", out]
        try expectFailure(["--model", Self.model, "--out", out], "give at least one --train FILE")
        try expectFailure(common + ["--train", train, "--epochs", "1", "--steps", "2"], "--epochs or --steps, not both")
        try expectFailure(common + ["--train", train, "--freeze", "encoder.block.7"], "invalid value for --freeze: 'encoder.block.7' matches no tensor")
        try expectFailure(common + ["--train", train, "--freeze", "encoder.block.0-2"], "encoder.block.2 matches no tensor")
        try expectFailure(common + ["--train", train, "--train", train, "--mix", "1"], "invalid value for --mix: 1 weight for 2 tasks")
        try expectFailure(common + ["--train", train, "--mix", "a"], "invalid value for --mix: 'a' is not a number")
        try expectFailure(common + ["--train", train, "--schedule", "cosine"], "--schedule must be one of constant, linear, inverse-sqrt")
        try expectFailure(common + ["--train", train, "--schedule", "linear"], "Adafactor without --lr computes its own")
        try expectFailure(common + ["--train", train, "--optimizer", "adamw", "--lr=-1"], "invalid value for --lr")
        try expectFailure(common + ["--train", train, "--max-grad-norm=-1"], "invalid value for --max-grad-norm")
        try expectFailure(common + ["--train", train, "--dropout", "1.5"], "invalid value for --dropout")
        try expectFailure(common + ["--train", train, "--eval-generate"], "--eval-generate needs --valid")
    }

    @Test func trainsSavesAndTheResultLoads() throws {
        let data = try data()
        defer { try? FileManager.default.removeItem(at: data) }
        let out = data.appendingPathComponent("out")
        let r = try run(baseArguments(data, out: out) + [
            "--steps", "4", "--valid", "reverse: =\(data.appendingPathComponent("reverse.valid.jsonl").path)",
            "--eval-generate", "--max-target-tokens", "8", "--max-input-tokens", "8", "--json", "--dropout", "0.05"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(summary["step"] as? Int == 4)
        #expect(summary["finished"] as? Bool == true)
        #expect(summary["eval_exact_match"] is Double)
        #expect(r.stderr.contains("24 examples, prefix \"reverse: \", sampled 50.0%, 1 empty line skipped"))
        #expect(r.stderr.contains("inputs truncated to --max-input-tokens 8"))
        #expect(r.stderr.contains("eval step 4: loss"))
        for file in Checkpoint.modelFiles + ["metrics.jsonl", "checkpoint-4/optimizer.safetensors", "checkpoint-4/trainer_state.json"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), "\(file) missing")
        }
        // The config records the --dropout the run used.
        #expect(try T5Config.load(from: out.appendingPathComponent("config.json")).dropoutRate == 0.05)
        let metrics = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(metrics.filter { $0.contains("\"type\":\"train\"") }.count == 4)
        #expect(metrics.filter { $0.contains("\"type\":\"eval\"") }.count == 1)
        let generated = try run(["generate", "--model", out.path, "--json", "reverse: 1 2 3"])
        #expect(generated.status == 0, "\(generated.stderr)")
        // A second run into the same directory needs --resume.
        let again = try run(baseArguments(data, out: out) + ["--steps", "4"])
        #expect(again.status != 0 && again.stderr.contains("already holds a training run; pass --resume"))
    }

    @Test func resumeContinuesExactlyAndChecksSettings() throws {
        let data = try data()
        defer { try? FileManager.default.removeItem(at: data) }
        let straight = data.appendingPathComponent("straight"), split = data.appendingPathComponent("split")
        // A constant schedule with warmup does not depend on the run's length, so a run planned for 3
        // steps and extended to 6 must equal one planned for 6.
        let extra = ["--dropout", "0.1", "--grad-accum", "2", "--schedule", "constant", "--warmup", "2", "--quiet"]
        #expect(try run(baseArguments(data, out: straight) + ["--steps", "6"] + extra).status == 0)
        #expect(try run(baseArguments(data, out: split) + ["--steps", "3"] + extra).status == 0)
        let other = try run(baseArguments(data, out: split) + ["--steps", "6", "--resume", "--batch-size", "8"] + extra)
        #expect(other.status != 0 && other.stderr.contains("batch_size was 4, now 8"), "\(other.stderr)")
        let resumed = try run(baseArguments(data, out: split) + ["--steps", "6", "--resume"] + extra.dropLast())
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming \(split.path) at step 3 of 6"), "\(resumed.stderr)")
        #expect(try Data(contentsOf: straight.appendingPathComponent("model.safetensors"))
                == Data(contentsOf: split.appendingPathComponent("model.safetensors")), "resumed weights differ")
        // Resuming the finished run (again, or with fewer steps) says so, trains nothing, and adds no row.
        let metrics = try Data(contentsOf: split.appendingPathComponent("metrics.jsonl"))
        let again = try run(baseArguments(data, out: split) + ["--steps", "6", "--resume"] + extra.dropLast())
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout == "\(split.path) already holds the finished run: step 6 of 6; nothing to do (more --steps or --epochs continue it)\n", "\(again.stdout)")
        // That one line is all, without --quiet: no report of the data it did not train on.
        #expect(again.stderr.isEmpty, "\(again.stderr)")
        let fewer = try run(baseArguments(data, out: split) + ["--steps", "4", "--resume"] + extra.dropLast())
        #expect(fewer.stdout.contains("step 6, past the 4 steps asked for; nothing to do"), "\(fewer.stdout)")
        let json = try run(baseArguments(data, out: split) + ["--steps", "6", "--resume", "--json"] + extra.dropLast())
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(json.status == 0 && summary["finished"] as? Bool == true && summary["step"] as? Int == 6 && summary["total_steps"] as? Int == 6, "\(json.stdout)")
        // ... with the figures the run ended with, as its log recorded them, not nulls.
        let records = String(decoding: metrics, as: UTF8.self).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let lastTrain = try #require(records.last { $0["type"] as? String == "train" })
        #expect(summary["train_loss"] as? Double == lastTrain["loss"] as? Double, "\(json.stdout)")
        if let lastEval = records.last(where: { $0["type"] as? String == "eval" }) {
            #expect(summary["eval_loss"] as? Double == lastEval["loss"] as? Double, "\(json.stdout)")
        }
        #expect(try Data(contentsOf: split.appendingPathComponent("metrics.jsonl")) == metrics, "metrics.jsonl changed")
    }

    @Test func interruptedRunsResumeToTheSameWeights() throws {
        let data = try data()
        defer { try? FileManager.default.removeItem(at: data) }
        let straight = data.appendingPathComponent("straight"), split = data.appendingPathComponent("split")
        let arguments = ["--steps", "150", "--save-every", "1", "--dropout", "0.1", "--quiet"]
        #expect(try run(baseArguments(data, out: straight) + arguments).status == 0)

        // Kill -9 at a few moments (mid-save included, with a checkpoint every step), checking after each
        // kill that what is on disk loads; then a graceful SIGINT; then --resume to the end.
        var killedAt = [Int]()
        for delay in [0.2, 0.3, 0.4, 0.5] {
            let process = Process()
            process.executableURL = CLITests.binary
            process.arguments = baseArguments(data, out: split) + arguments + (FileManager.default.fileExists(atPath: split.path) ? ["--resume"] : [])
            process.standardError = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            Thread.sleep(forTimeInterval: delay)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if let latest = Checkpoint.latest(in: split) {
                _ = try Checkpoint.loadState(from: latest)
                _ = try T5Model(directory: latest)
                killedAt.append(try Checkpoint.loadState(from: latest).state.step)
            }
            if FileManager.default.fileExists(atPath: split.appendingPathComponent("model.safetensors").path) {
                _ = try T5Model(directory: split)
            }
        }
        let interrupted = Process()
        interrupted.executableURL = CLITests.binary
        // Without --quiet, which would silence the note this checks.
        interrupted.arguments = baseArguments(data, out: split) + arguments.filter { $0 != "--quiet" } + (FileManager.default.fileExists(atPath: split.path) ? ["--resume"] : [])
        let err = StderrLines(), stdout = Pipe()
        interrupted.standardError = err.pipe
        interrupted.standardOutput = stdout
        try interrupted.run()
        // Not before a step has run: until then a signal ends the command at once (exit 130, nothing saved).
        #expect(err.wait(for: "/150 ["), "no progress line: \(err.text)")
        kill(interrupted.processIdentifier, SIGINT)
        let summary = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        interrupted.waitUntilExit()
        let message = err.text
        // The signal may come after the last step (a checkpoint left by a kill -9 near the end).
        if summary.contains("(interrupted; continue with --resume)") {
            #expect(interrupted.terminationStatus == 130)
            #expect(message.contains("interrupted: saving step"), "\(message)")
            #expect(!message.contains("t5:"), "an interruption is not an error: \(message)")
        }
        let finish = try run(baseArguments(data, out: split) + arguments + ["--resume"])
        #expect(finish.status == 0, "\(finish.stderr)")
        print("kill -9 left checkpoints at steps \(killedAt); resumed to 150")
        #expect(try Data(contentsOf: straight.appendingPathComponent("model.safetensors"))
                == Data(contentsOf: split.appendingPathComponent("model.safetensors")), "resumed weights differ")
    }

    /// SIGTERM during training stops it as Ctrl-C does (the step finishes and is saved), with status 143.
    @Test func sigtermStopsAfterTheStepAndSavesWith143() throws {
        let data = try data()
        defer { try? FileManager.default.removeItem(at: data) }
        let out = data.appendingPathComponent("out")
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = baseArguments(data, out: out) + ["--steps", "100000"]
        let err = StderrLines(), stdout = Pipe()
        process.standardError = err.pipe
        process.standardOutput = stdout
        try process.run()
        #expect(err.wait(for: "step 1/100000 ["), "no progress line: \(err.text)")
        kill(process.processIdentifier, SIGTERM)
        let summary = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 143, "\(process.terminationReason) \(process.terminationStatus)")
        let step = try #require(try Checkpoint.latest(in: out).map { try Checkpoint.loadState(from: $0).state.step })
        #expect(summary == "saved \(out.path) at step \(step) of 100000 (interrupted; continue with --resume)\n", "\(summary)")
        #expect(err.text.contains("interrupted: saving step \(step)\n") && !err.text.contains("t5:"), "\(err.text)")
    }
}

/// A child's stderr, collected as it arrives, for a test that waits for a line before acting.
final class StderrLines: @unchecked Sendable {
    let pipe = Pipe()
    private let lock = NSLock()
    private var data = Data()
    private let arrived = DispatchSemaphore(value: 0)

    init() {
        pipe.fileHandleForReading.readabilityHandler = { [self] handle in
            let chunk = handle.availableData
            if chunk.isEmpty {
                handle.readabilityHandler = nil
            }
            lock.withLock { data.append(chunk) }
            arrived.signal()
        }
    }

    var text: String {
        lock.withLock { String(decoding: data, as: UTF8.self) }
    }

    /// Waits (at most `seconds`) until the text holds `fragment`; false if it never did.
    func wait(for fragment: String, seconds: Double = 60) -> Bool {
        let deadline = DispatchTime.now() + seconds
        while !text.contains(fragment) {
            if arrived.wait(timeout: deadline) == .timedOut { return false }
        }
        return true
    }
}
