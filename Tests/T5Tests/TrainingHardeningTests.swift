import Foundation
import Testing
@testable import T5

/// Training that goes wrong: a run that diverges stops with an error and writes no non-finite weights or
/// null metrics; a checkpoint whose trainer_state.json was damaged or edited is refused naming the field; a
/// trainer that cannot save says so before its first step.
@Suite struct TrainingHardeningTests {
    let finetune = FinetuneCLITests()

    func lines(_ url: URL) throws -> [String] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test func aDivergingRunStopsWithAnErrorAndSavesNothingNonFinite() throws {
        let data = try finetune.data()
        let out = try scratchDirectory("diverge").appendingPathComponent("run")
        var args = finetune.baseArguments(data, out: out)
        args[args.firstIndex(of: "1e-2")!] = "1e38"
        let r = try finetune.run(args + ["--steps", "6", "--save-every", "1", "--json"])
        #expect(r.status == 1)
        let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("t5: training diverged at step 1: the update made "), "\(r.stderr)")
        #expect(r.stdout.isEmpty, "no summary for a failed run: \(r.stdout)")
        // No checkpoint, no model: nothing finite was ever reached.
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("model.safetensors").path))
        #expect(Checkpoint.latest(in: out) == nil)
        for line in try lines(out.appendingPathComponent("metrics.jsonl")) {
            #expect(!line.contains("null") && !line.contains("nan"), "\(line)")
        }
    }

    @Test func aDivergenceAfterCheckpointsKeepsTheLastFiniteOne() throws {
        // Two good steps saved, step 3 done, then weights poisoned: step 4 stops the run; checkpoint-2 stays.
        let model = try T5Model(directory: Fixtures.modelDirectory("t5-relu-tied"), packWeights: false)
        let data = try TrainingData(tasks: [TaskData(source: TaskSource(path: "t"), examples: (0..<16).map {
            TokenizedExample(inputIDs: [5 + $0 % 7, 9, 1], targetIDs: [6 + $0 % 5, 1])
        })])
        var options = TrainingOptions()
        options.optimizer = .adamW(.init(learningRate: 1e-3))
        options.length = .steps(6)
        options.batchSize = 4
        options.saveEvery = 2
        let out = try scratchDirectory("diverge-late").appendingPathComponent("run")
        let trainer = try Trainer(model: model, training: data, options: options,
                                  files: try .copying(from: Fixtures.modelDirectory("t5-relu-tied"), config: model.config))
        var poisoned = false
        #expect(throws: T5Error.diverged(step: 4, reason: "the loss is nan")) {
            try trainer.run(output: out) { report in
                if report.step == 3 && !poisoned {
                    trainer.store.values["encoder.final_layer_norm.weight"]?.pointer[0] = .nan
                    poisoned = true
                }
                return .continue
            }
        }
        #expect(trainer.completedSteps == 3)
        #expect(Checkpoint.latest(in: out)?.lastPathComponent == "checkpoint-2")
        _ = try T5Model(directory: out)  // loads: every saved weight is finite
    }

    @Test func nonFiniteStepsAreSkippedCountedAndBounded() throws {
        let model = try T5Model(directory: Fixtures.modelDirectory("t5-relu-tied"), packWeights: false)
        let data = try TrainingData(tasks: [TaskData(source: TaskSource(path: "t"), examples: (0..<16).map {
            TokenizedExample(inputIDs: [5 + $0 % 7, 9, 1], targetIDs: [6 + $0 % 5, 1])
        })])
        var options = TrainingOptions()
        options.optimizer = .adamW(.init(learningRate: 1e-3))
        options.length = .steps(10)
        options.batchSize = 4
        options.maxNonFiniteSteps = 2
        let trainer = try Trainer(model: model, training: data, options: options)
        try trainer.step()
        let key = "decoder.block.0.layer.0.SelfAttention.q.weight"
        trainer.store.values["encoder.final_layer_norm.weight"]?.pointer[0] = .nan
        let before = try #require(trainer.store.values[key]).array
        for expected in 2...3 {
            let report = try trainer.step()
            #expect(report.step == expected)
            #expect(report.skipped == "the loss is nan")
        }
        #expect(trainer.store.values[key]?.array == before, "a skipped step must not update")
        #expect(trainer.state.skippedSteps == 2)
        #expect(throws: T5Error.diverged(step: 4, reason: "the loss is nan (after 2 skipped steps)")) { try trainer.step() }
        #expect(trainer.completedSteps == 3)
    }

    @Test func aTrainerWithoutModelFilesRefusesBeforeItsFirstStep() throws {
        let model = try T5Model(directory: Fixtures.modelDirectory("t5-relu-tied"), packWeights: false)
        let data = try TrainingData(tasks: [TaskData(source: TaskSource(path: "t"), examples: [
            TokenizedExample(inputIDs: [5, 1], targetIDs: [6, 1]),
        ])])
        var options = TrainingOptions()
        options.length = .steps(3)
        options.batchSize = 1
        let trainer = try Trainer(model: model, training: data, options: options)
        let out = try scratchDirectory("no-files").appendingPathComponent("run")
        #expect(throws: T5Error.self) { try trainer.run(output: out) }
        #expect(trainer.completedSteps == 0)
    }

    @Test func damagedTrainerStateIsRefusedNamingTheField() throws {
        let data = try finetune.data()
        let out = try scratchDirectory("state").appendingPathComponent("run")
        let args = finetune.baseArguments(data, out: out)
        let first = try finetune.run(args + ["--steps", "2", "--quiet"])
        #expect(first.status == 0, "\(first.stderr)")
        let stateURL = out.appendingPathComponent("checkpoint-2/trainer_state.json")
        let original = try Data(contentsOf: stateURL)
        for (field, value, fragment) in [
            ("pool", -5 as Any, "pool: must be 0 or more, found -5"),
            ("step", 1_000_000_000_000 as Any, "step: 1000000000000 steps of 1 batch(es) do not end at pool"),
            ("batch_in_pool", 1 << 40 as Any, "batch_in_pool: 1099511627776 is past the"),
            ("drawn", [0] as Any, "drawn: has 1 entries for 2 training tasks"),
            ("elapsed_seconds", -1 as Any, "elapsed_seconds: must be a finite number of seconds"),
            ("skipped_steps", 9 as Any, "skipped_steps: 9 is not within 0...2"),
            ("step", "two" as Any, "unreadable training state"),
        ] {
            var object = try #require(JSONSerialization.jsonObject(with: original) as? [String: Any])
            object[field] = value
            try JSONSerialization.data(withJSONObject: object).write(to: stateURL)
            let r = try finetune.run(args + ["--steps", "4", "--resume", "--quiet"])
            #expect(r.status == 1, "\(field)")
            let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
            #expect(last.contains("trainer_state.json") && last.contains(fragment), "\(field): \(r.stderr)")
            #expect(!r.stderr.contains("Fatal error"))
        }
        try original.write(to: stateURL)
        let resumed = try finetune.run(args + ["--steps", "4", "--resume", "--quiet"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
    }
}
