import Foundation
import Testing
@testable import T5

/// `t5 tune` and `t5 report` through the built binary, on the tiny fixture model and a tiny reversal task:
/// a learning rate of 1e-7 (the weights barely move) against 1e-2 (AdamW learns the task's easy part in a
/// few steps), so the right ranking is known without computing it.
@Suite struct TuneTests {
    static let model = Fixtures.modelDirectory("t5-relu-tied").path

    /// The built binary, as scripts run it (`CLITests`' runner).
    @discardableResult
    func run(_ arguments: [String]) throws -> CLITests.Result {
        try CLITests().run(arguments)
    }

    /// Reversal data and a space with the bad and the good learning rate.
    func study() throws -> URL {
        let dir = try scratchDirectory("tune")
        var generator = SeededGenerator(seed: 5)
        func line() -> String {
            let d = (0..<(3 + generator.uniformIndex(below: 3))).map { _ in String(generator.uniformIndex(below: 10)) }
            return "{\"input\": \"\(d.joined(separator: " "))\", \"target\": \"\(d.reversed().joined(separator: " "))\"}\n"
        }
        try Data((0..<24).map { _ in line() }.joined().utf8).write(to: dir.appendingPathComponent("train.jsonl"))
        try Data((0..<6).map { _ in line() }.joined().utf8).write(to: dir.appendingPathComponent("valid.jsonl"))
        try Data("""
            {"lr": {"choice": [1e-7, 1e-2]}, "optimizer": "adamw", "batch-size": 4, "max-input-tokens": 16, "max-target-tokens": 16}
            """.utf8).write(to: dir.appendingPathComponent("space.json"))
        return dir
    }

    func arguments(_ dir: URL, trials: Int = 2, strategy: String = "asha", space: String = "space.json") -> [String] {
        ["tune", "--model", Self.model, "--train", dir.appendingPathComponent("train.jsonl").path,
         "--valid", dir.appendingPathComponent("valid.jsonl").path, "--out", dir.appendingPathComponent("study").path,
         "--space", dir.appendingPathComponent(space).path, "--trials", "\(trials)", "--strategy", strategy,
         "--min-steps", "3", "--max-steps", "6", "--reduction-factor", "2", "--jobs", "1", "--threads-per-job", "1", "--json", "--quiet"]
    }

    func summary(_ r: CLITests.Result) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stderr)")
    }

    func trials(_ s: [String: Any]) -> [[String: Any]] { s["trials"] as? [[String: Any]] ?? [] }

    /// Launch lines in each trial's log: one per process started for it.
    func launches(_ dir: URL, trials: Int) throws -> [Int] {
        try (1...trials).map { id in
            let log = try String(contentsOf: dir.appendingPathComponent("study/trials/\(id).log"), encoding: .utf8)
            return log.split(separator: "\n").filter { $0.hasPrefix("t5 tune: launch") }.count
        }
    }

    @Test func ashaPrunesTheBadLearningRateAtTheFirstRungAndAResumedStudyRepeatsNoTrial() throws {
        let dir = try study()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try run(arguments(dir))
        #expect(first.status == 0, "\(first.stderr)")
        let s = try summary(first)
        #expect(s["rungs"] as? [Int] == [3, 6])
        let rows = trials(s)
        #expect(rows.count == 2)
        let best = try #require(s["best"] as? [String: Any])
        #expect((best["parameters"] as? [String: String])?["lr"] == "0.01")
        #expect(best["status"] as? String == "complete" && best["steps"] as? Int == 6)
        let bad = try #require(rows.first { ($0["parameters"] as? [String: String])?["lr"] == "1e-07" })
        #expect(bad["status"] as? String == "pruned" && bad["steps"] as? Int == 3, "\(bad)")
        #expect(bad["rank"] as? Int == 2)
        // The good trial went on from its rung-0 checkpoint: 6 steps logged once each, no step retrained.
        let goodID = try #require(best["trial"] as? Int)
        let metrics = try String(contentsOf: dir.appendingPathComponent("study/trials/\(goodID)/metrics.jsonl"), encoding: .utf8)
        let steps = metrics.split(separator: "\n").filter { $0.contains("\"type\":\"train\"") }.compactMap { line -> Int? in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["step"] as? Int
        }
        #expect(steps == [1, 2, 3, 4, 5, 6])
        // Only the best keeps a model; the pruned trial keeps its metrics for the report.
        let badID = try #require(bad["trial"] as? Int)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("study/trials/\(badID)").path) == ["metrics.jsonl"])
        for file in ["best.json", "best-command.txt", "best/model.safetensors", "best/config.json", "study.json"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("study/\(file)").path), "\(file)")
        }
        let command = try String(contentsOf: dir.appendingPathComponent("study/best-command.txt"), encoding: .utf8)
        #expect(command.hasPrefix("t5 finetune --model ") && command.contains("--lr 0.01") && command.contains("--steps 6"))
        #expect(try launches(dir, trials: 2).sorted() == [1, 2])

        // Rerun with one trial more: only the new trial starts.
        let before = try launches(dir, trials: 2)
        let more = try run(arguments(dir, trials: 3))
        #expect(more.status == 0, "\(more.stderr)")
        #expect(trials(try summary(more)).count == 3)
        #expect(try launches(dir, trials: 2) == before)
        #expect(try launches(dir, trials: 3)[2] >= 1)
        // The same command again: nothing to run.
        let all = try launches(dir, trials: 3)
        let again = try run(arguments(dir, trials: 3))
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try launches(dir, trials: 3) == all)

        // A different space is refused, naming the difference.
        try Data(#"{"lr": {"choice": [1e-7, 1e-3]}, "optimizer": "adamw", "batch-size": 4, "max-input-tokens": 16, "max-target-tokens": 16}"#.utf8)
            .write(to: dir.appendingPathComponent("other.json"))
        let other = try run(arguments(dir, space: "other.json"))
        #expect(other.status == 1)
        #expect(other.stderr == "t5: invalid value for --out: \(dir.path)/study holds a study made with different settings: space lr was \"choice [1e-07, 0.01]\", now \"choice [1e-07, 0.001]\"; pass --force-new to start over\n")

        // The report: one curve per trial on the study's chart, the pruned one grey; values from metrics.jsonl.
        let report = try run(["report", dir.appendingPathComponent("study").path])
        #expect(report.status == 0, "\(report.stderr)")
        let html = try String(contentsOf: dir.appendingPathComponent("study/report.html"), encoding: .utf8)
        #expect(!html.contains("<script"))
        let charts = html.components(separatedBy: "<svg ").dropFirst().map { "<svg " + $0 }
        #expect(charts.count >= 3)  // validation, training loss, lr against the metric
        let validation = try #require(charts.first)
        #expect(validation.contains("class=\"axis x\"") && validation.contains("class=\"axis y\""))
        let paths = validation.components(separatedBy: "<path ").dropFirst()
        #expect(paths.count == 3)
        #expect(paths.filter { $0.contains("class=\"series muted\"") }.count == 2)  // trials 1 and 3 have lr 1e-7
        let training = try #require(charts.dropFirst().first)
        let curve = try points(training, series: "\(goodID)")
        let losses = metrics.split(separator: "\n").compactMap { line -> (Double, Double)? in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], o["type"] as? String == "train" else { return nil }
            return (Double(o["step"] as! Int), o["loss"] as! Double)
        }
        #expect(curve.count == losses.count)
        for (p, m) in zip(curve, losses) {
            #expect(abs(p.x - m.0) < 0.01 && abs(p.y - m.1) < 0.01 * max(1, abs(m.1)), "chart point \(p) against metrics.jsonl \(m)")
        }
    }

    /// A path's points mapped back to data through the chart's data-plot and data-domain.
    func points(_ svg: String, series: String) throws -> [(x: Double, y: Double)] {
        func attribute(_ name: String, in text: String) throws -> [Double] {
            let start = try #require(text.range(of: "\(name)=\""))
            let rest = text[start.upperBound...]
            return rest[..<rest.firstIndex(of: "\"")!].split(separator: " ").compactMap { Double($0) }
        }
        let plot = try attribute("data-plot", in: svg), domain = try attribute("data-domain", in: svg)
        let path = try #require(svg.components(separatedBy: "<path ").first { $0.contains("data-series=\"\(series)\"") })
        let d = try #require(path.range(of: " d=\"")).upperBound
        let coordinates = path[d...].prefix { $0 != "\"" }.split(separator: " ").map { $0.dropFirst().split(separator: ",").map { Double($0)! } }
        return coordinates.map { c in
            (domain[0] + (c[0] - plot[0]) / plot[2] * (domain[1] - domain[0]),
             domain[2] + (plot[1] + plot[3] - c[1]) / plot[3] * (domain[3] - domain[2]))
        }
    }

    @Test func randomSearchRanksTheLearningRates() throws {
        let dir = try study()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try run(arguments(dir, strategy: "random"))
        #expect(r.status == 0, "\(r.stderr)")
        let rows = trials(try summary(r))
        #expect(rows.map { ($0["parameters"] as? [String: String])?["lr"] } == ["0.01", "1e-07"])
        #expect(rows.allSatisfy { $0["status"] as? String == "complete" && $0["steps"] as? Int == 6 })
        #expect(try launches(dir, trials: 2) == [1, 1])
    }

    /// Distillation trials: --model is the student, the teacher comes after `--` unchanged; the bad learning
    /// rate still ranks last.
    @Test func distillTrialsTrainTheStudentWithTheTeacherPassedThrough() throws {
        let dir = try study()
        defer { try? FileManager.default.removeItem(at: dir) }
        var a = arguments(dir, strategy: "random")
        a.insert(contentsOf: ["--objective", "distill"], at: 1)
        let r = try run(a + ["--", "--teacher", Self.model, "--alpha", "0.5"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = trials(try summary(r))
        #expect(rows.map { ($0["parameters"] as? [String: String])?["lr"] } == ["0.01", "1e-07"])
        #expect(rows.allSatisfy { $0["status"] as? String == "complete" })
        let command = try String(contentsOf: dir.appendingPathComponent("study/best-command.txt"), encoding: .utf8)
        #expect(command.contains("t5 distill --student \(Self.model)") && command.contains("--teacher \(Self.model) --alpha 0.5"), "\(command)")
        // A flag t5 tune sets itself is refused after -- too.
        let refused = try run(a + ["--", "--teacher", Self.model, "--steps", "3"])
        #expect(refused.status != 0 && refused.stderr.contains("--steps after --"), "\(refused.stderr)")
    }

    /// Pretraining trials: --train and --valid are text, corrupted as t5 pretrain does; exact match is refused.
    @Test func pretrainTrialsRankOnHeldOutSpanCorruption() throws {
        let dir = try study()
        defer { try? FileManager.default.removeItem(at: dir) }
        let words = ["the", "house", "is", "big", "a", "dog", "runs", "far", "and", "sleeps"]
        var generator = SeededGenerator(seed: 9)
        func document() -> String {
            (0..<40).map { _ in words[generator.uniformIndex(below: words.count)] }.joined(separator: " ") + "\n\n"
        }
        try Data((0..<12).map { _ in document() }.joined().utf8).write(to: dir.appendingPathComponent("train.txt"))
        try Data((0..<3).map { _ in document() }.joined().utf8).write(to: dir.appendingPathComponent("valid.txt"))
        try Data(#"{"lr": {"choice": [1e-7, 1e-2]}, "optimizer": "adamw", "batch-size": 4}"#.utf8)
            .write(to: dir.appendingPathComponent("pretrain-space.json"))
        var a = arguments(dir, strategy: "random", space: "pretrain-space.json")
        a[a.firstIndex(of: dir.appendingPathComponent("train.jsonl").path)!] = dir.appendingPathComponent("train.txt").path
        a[a.firstIndex(of: dir.appendingPathComponent("valid.jsonl").path)!] = dir.appendingPathComponent("valid.txt").path
        a.insert(contentsOf: ["--objective", "pretrain"], at: 1)
        let r = try run(a + ["--", "--input-length", "24"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = trials(try summary(r))
        #expect(rows.map { ($0["parameters"] as? [String: String])?["lr"] } == ["0.01", "1e-07"])
        let command = try String(contentsOf: dir.appendingPathComponent("study/best-command.txt"), encoding: .utf8)
        #expect(command.contains("t5 pretrain --model") && command.contains("--text ") && command.contains("--valid-text "), "\(command)")
        let exact = try run(a + ["--metric", "exact-match"])
        #expect(exact.status != 0 && exact.stderr.contains("pretrain trials are ranked on valid-loss"), "\(exact.stderr)")
    }

    @Test func aFailingTrialFailsOnlyItself() throws {
        let dir = try study()
        defer { try? FileManager.default.removeItem(at: dir) }
        // --lr 1e38 diverges: finetune stops with an error, and the other trial still runs.
        try Data(#"{"lr": {"choice": [1e38, 1e-2]}, "optimizer": "adamw", "batch-size": 4, "max-input-tokens": 16, "max-target-tokens": 16}"#.utf8)
            .write(to: dir.appendingPathComponent("space.json"))
        let r = try run(arguments(dir, strategy: "random"))
        #expect(r.status == 0, "\(r.stderr)")
        let rows = trials(try summary(r))
        #expect(rows.first?["status"] as? String == "complete")
        let failed = try #require(rows.last)
        #expect(failed["status"] as? String == "failed")
        #expect((failed["error"] as? String)?.contains("diverged") == true, "\(failed)")
    }

    @Test func aKilledStudyResumesWithoutRepeatingAFinishedTrial() throws {
        let dir = try study()
        defer { try? FileManager.default.removeItem(at: dir) }
        var args = arguments(dir, strategy: "random")
        args[args.firstIndex(of: "--max-steps")! + 1] = "300"
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // kill -9 once trial 1 is complete and trial 2 has started: the trial process lives on, orphaned.
        let studyFile = dir.appendingPathComponent("study/study.json")
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let data = try? Data(contentsOf: studyFile), let text = String(data: data, encoding: .utf8),
               text.contains("\"complete\""), text.contains("\"running\"") { break }
            usleep(20_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let r = try run(args)
        #expect(r.status == 0, "\(r.stderr)")
        let rows = trials(try summary(r))
        #expect(rows.count == 2 && rows.allSatisfy { $0["status"] as? String == "complete" && $0["steps"] as? Int == 300 }, "\(rows)")
        // Trial 1 was never started again; trial 2 was continued from its checkpoint by a second launch.
        #expect(try launches(dir, trials: 2) == [1, 2])
        let log = try String(contentsOf: dir.appendingPathComponent("study/trials/2/metrics.jsonl"), encoding: .utf8)
        let steps = log.split(separator: "\n").filter { $0.contains("\"type\":\"train\"") }.count
        #expect(steps == 300)
    }

    @Test func badInputIsOneLineBeforeAnyTrial() throws {
        let dir = try study()
        defer { try? FileManager.default.removeItem(at: dir) }
        let space = dir.appendingPathComponent("bad.json")
        let cases: [(String, [String], Int32, String)] = [
            (#"{"lrr": {"choice": [1]}}"#, [], 1, #""lrr" is not an option of t5 finetune; did you mean "lr"?"#),
            (#"{"steps": 5}"#, [], 1, #""steps" is set by --max-steps"#),
            (#"{"lr": {"uniform": [0.1, 0.1]}}"#, [], 1, "range [0.1, 0.1] is empty"),
            (#"{"lr": {"uniform": [0.2, 0.1]}}"#, [], 1, "range [0.2, 0.1] is inverted"),
            (#"{"lr": {"log-uniform": [0, 0.1]}}"#, [], 1, "log-uniform needs a positive range"),
            (#"{"lr": {"choice": []}}"#, [], 1, "choice of an empty list"),
            (#"{"lr": 0.01, "schedule": {"choice": ["linear", "cosine"]}}"#, [], 1, "\"schedule\" = \"cosine\": t5 finetune refuses it: --schedule must be one of"),
            (#"{"warmup": {"int-uniform": [5, 2]}}"#, [], 1, "int-uniform range [5, 2] is inverted"),
            (#"{"lr": 0.01}"#, ["--min-steps", "7"], 64, "invalid value for --min-steps: 7 is more than --max-steps 6"),
            (#"{"lr": 0.01}"#, ["--trials", "0"], 64, "invalid value for --trials: must be at least 1, got 0"),
        ]
        for (text, extra, status, fragment) in cases {
            try Data(text.utf8).write(to: space)
            let r = try run(arguments(dir, space: "bad.json") + extra)
            #expect(r.status == status, "\(text) \(extra): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.hasPrefix("t5: ") && r.stderr.contains(fragment), "\(text): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("study").path), "\(text) wrote the study")
        }
        var noValid = arguments(dir)
        noValid.removeSubrange(noValid.firstIndex(of: "--valid")!...noValid.firstIndex(of: "--valid")! + 1)
        let r = try run(noValid + ["--metric", "exact-match"])
        #expect(r.status == 64 && r.stderr == "t5: --metric exact-match needs --valid data\n", "\(r.stderr)")
    }

    @Test func aPausedRunResumesOnTheSameScheduleAsAnUninterruptedOne() throws {
        let dir = try study()
        defer { try? FileManager.default.removeItem(at: dir) }
        func finetune(_ out: String, _ extra: [String]) throws {
            let r = try run(["finetune", "--model", Self.model, "--train", dir.appendingPathComponent("train.jsonl").path,
                             "--out", dir.appendingPathComponent(out).path, "--steps", "6", "--schedule", "linear", "--optimizer", "adamw",
                             "--lr", "1e-2", "--batch-size", "4", "--threads", "1", "--quiet"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
        }
        try finetune("whole", [])
        try finetune("paused", ["--pause-at", "3"])
        #expect(Checkpoint.checkpoints(in: dir.appendingPathComponent("paused")).map(\.step) == [3])
        try finetune("paused", ["--resume"])
        func log(_ out: String) throws -> [String] {
            try String(contentsOf: dir.appendingPathComponent("\(out)/metrics.jsonl"), encoding: .utf8).split(separator: "\n")
                .filter { $0.contains("\"type\":\"train\"") }
                .map { $0.replacingOccurrences(of: #","(tokens_per_s|step_s|elapsed_s)":[0-9.e-]+"#, with: "", options: .regularExpression) }
        }
        #expect(try log("whole") == log("paused"))
    }
}

/// The schedule's arithmetic, checked against Li et al. 2020's definitions worked by hand.
@Suite struct SuccessiveHalvingTests {
    @Test func rungsGrowByTheReductionFactorUpToTheBudget() {
        #expect(SuccessiveHalving(minSteps: 10, maxSteps: 90, reduction: 3).rungs == [10, 30, 90])
        #expect(SuccessiveHalving(minSteps: 10, maxSteps: 50, reduction: 3).rungs == [10, 30, 50])
        #expect(SuccessiveHalving(minSteps: 5, maxSteps: 5, reduction: 3).rungs == [5])
    }

    @Test func promotesTheTopThirdWithoutWaitingForTheRungToFill() {
        let s = SuccessiveHalving(minSteps: 1, maxSteps: 9, reduction: 3)
        typealias R = SuccessiveHalving.Record
        // Two results at rung 0: ⌊2/3⌋ = 0 may move up.
        var trials: [Int: R] = [1: R(results: [0.5], promoted: false), 2: R(results: [0.4], promoted: false)]
        #expect(s.promotion(trials) == nil)
        // A third: ⌊3/3⌋ = 1, the best (trial 2).
        trials[3] = R(results: [0.9], promoted: false)
        #expect(s.promotion(trials)! == (2, 1))
        trials[2]!.promoted = true
        #expect(s.promotion(trials) == nil)
        // With at most 3 trials, rung 0 sends at most one up: trials 1 and 3 can never be promoted.
        #expect(s.isPruned(1, trials, maxTrials: 3) && s.isPruned(3, trials, maxTrials: 3))
        // With up to 6, two may go up: trial 1 (ranked 2nd) still might.
        #expect(!s.isPruned(1, trials, maxTrials: 6) && s.isPruned(3, trials, maxTrials: 6))
    }

    @Test func aDiscreteSpaceIsWalkedWithoutRepeats() throws {
        let space = try SearchSpace(json: .object(JSONObject([("lr", .object(JSONObject([("choice", .array([.number(0.1), .number(0.2), .number(0.3)]))]))),
                                                               ("optimizer", .string("adamw"))])), path: "s.json")
        let drawn = space.configurations(count: 3, seed: 1).map { $0[0].1 }
        #expect(Set(drawn.compactMap(\.double)) == [0.1, 0.2, 0.3])
    }
}
