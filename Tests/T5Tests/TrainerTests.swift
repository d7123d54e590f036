import Foundation
import Testing
@testable import T5

/// The training loop against PyTorch (Tests/Fixtures/training, from tools/make_training_fixtures.py) and
/// its own guarantees: exact resume, frozen tensors untouched, token-mean gradient accumulation.
@Suite struct TrainerTests {
    static let optimizerCases: [(String, OptimizerChoice)] = [
        ("adamw", .adamW(.init(learningRate: 1e-3, weightDecay: 0.01))),
        ("adafactor", .adafactor(.fixed(learningRate: 1e-3))),
        ("adafactor_relative", .adafactor(.init())),
    ]

    /// Options for fixture runs: the whole batch every step, no dropout, no clipping, constant rate.
    func fixtureOptions(_ optimizer: OptimizerChoice, examples: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.optimizer = optimizer
        o.batchSize = examples
        o.length = .steps(3)
        o.maxGradNorm = 0
        o.dropout = 0
        return o
    }

    func fixtureData(_ variant: String) throws -> TrainingData {
        let batch = try TrainingFixtures.batch(variant)
        let examples = zip(batch.inputIDs, batch.targetIDs).map { TokenizedExample(inputIDs: $0, targetIDs: $1) }
        return try TrainingData(tasks: [TaskData(source: TaskSource(path: "fixture"), examples: examples)])
    }

    @Test(arguments: TrainingFixtures.variants)
    func threeStepUpdatesMatchPyTorch(variant: String) throws {
        // Bit-exact comparisons: no other test may change the thread split meanwhile.
        try ParallelSettings.scoped {
            let reference = try TrainingFixtures.reference(variant)
            let data = try fixtureData(variant)
            for (name, optimizer) in Self.optimizerCases {
                let expected = try TrainingFixtures.tensors(variant, try #require(reference.optimizers[name]).file)
                let losses = try #require(reference.optimizers[name]).losses_before_each_step
                let trainer = try Trainer(model: try TrainingFixtures.model(variant), training: data,
                                          options: fixtureOptions(optimizer, examples: data.exampleCount))
                let initial = trainer.store.values.mapValues(\.array)
                for k in 0..<3 {
                    let report = try trainer.step()
                    #expect(abs(report.loss - Double(losses[k])) <= 1e-4 * Double(losses[k]), "\(variant) \(name) step \(k + 1): loss \(report.loss) vs \(losses[k])")
                }
                let worst = try worstUpdateDistance(
                    trainer.store, initial: initial, expected: expected, tolerance: 1e-3, label: "\(variant) \(name) 3-step")
                print("3-step parity \(variant) \(name): max relative L2 of a tensor's update \(String(format: "%.2e", worst.distance)) (\(worst.key))")
            }
        }
    }

    // MARK: - Runs on the inference fixture (it has a tokenizer)

    static let modelName = "t5-relu-tied"

    /// Two small prefix tasks tokenized with the fixture tokenizer.
    func tasks(_ model: T5Model, count: Int = 24) throws -> TrainingData {
        func task(_ prefix: String, _ pairs: [(String, String)]) -> TaskData {
            TaskData(source: TaskSource(prefix: prefix, path: prefix), examples: pairs.map {
                TokenizedExample(inputIDs: model.tokenizer.encode(prefix + $0.0), targetIDs: model.tokenizer.encode($0.1))
            })
        }
        var generator = SeededGenerator(seed: 1)
        var digits = [[Int]]()
        for i in 0..<count {
            digits.append((0..<(3 + i % 4)).map { _ in generator.uniformIndex(below: 10) })
        }
        func text(_ d: [Int]) -> String { d.map(String.init).joined(separator: " ") }
        let reverse = task("reverse: ", digits.map { (text($0), text($0.reversed())) })
        let sort = task("sort: ", digits.prefix(count / 2).map { (text($0), text($0.sorted())) })
        return try TrainingData(tasks: [reverse, sort])
    }

    func files(_ model: T5Model) throws -> Checkpoint.ModelFiles {
        try .copying(from: Fixtures.modelDirectory(Self.modelName), config: model.config)
    }

    @Test func savedCheckpointReloadsIdenticallyAndFrozenTensorsAreBitIdentical() throws {
        // Bit-exact comparisons: no other test may change the thread split meanwhile.
        try ParallelSettings.scoped {
            let model = try Fixtures.model(Self.modelName)
            let data = try tasks(model)
            let specs = T5Parameters.specs(for: model.config, separateLMHead: model.hasSeparateLMHead)
            let frozen = try Freezing.frozenKeys(["embeddings", "encoder.block.0"], parameters: specs)
            var o = TrainingOptions()
            o.optimizer = .adamW(.init(learningRate: 1e-2, weightDecay: 0.1))
            o.length = .steps(3)
            o.batchSize = 4
            let trainer = try Trainer(model: model, training: data, options: o, frozen: frozen, files: files(model))
            #expect(Set(trainer.store.gradients.keys) == trainer.store.trainable)
            #expect(trainer.store.gradients.keys.allSatisfy { !frozen.contains($0) })
            let out = try scratchDirectory("trainer-save")
            defer { try? FileManager.default.removeItem(at: out) }
            try trainer.run(output: out)
            #expect(trainer.optimizer.stateTensors().keys.allSatisfy { key in !frozen.contains { key.hasPrefix($0 + ".") } })

            let reloaded = try T5Model(directory: out)
            let input = "reverse: 1 2 3", target = "3 2 1"
            // The reloaded model packs its encoder weights for the AVX-512 sgemm at load, which sums in another
            // order than the trainer's in-memory model: equal log-probs up to float rounding, and the saved
            // weights themselves bit for bit (below).
            let fromDisk = try reloaded.score(input: input, target: target)
            let inMemory = try trainer.model.score(input: input, target: target)
            #expect(fromDisk.ids == inMemory.ids)
            #expect(zip(fromDisk.logprobs, inMemory.logprobs).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) },
                    "\(fromDisk.logprobs) vs \(inMemory.logprobs)")
            let original = try SafeTensorsArchive(directory: Fixtures.modelDirectory(Self.modelName))
            let saved = try SafeTensorsArchive(directory: out)
            for spec in specs {
                let value = try #require(trainer.store.values[spec.key], "no trained value for \(spec.key)")
                #expect(try saved.tensor(spec.key).array.map(\.bitPattern) == value.array.map(\.bitPattern), "saved \(spec.key) differs")
            }
            var changed = 0
            for spec in specs {
                let before = try original.tensor(spec.key).array, after = try saved.tensor(spec.key).array
                if frozen.contains(spec.key) {
                    #expect(before.map(\.bitPattern) == after.map(\.bitPattern), "frozen \(spec.key) changed")
                } else if before != after {
                    changed += 1
                }
            }
            #expect(changed == specs.count - frozen.count, "every trainable tensor moves")
            // Generation loads the result too.
            #expect(try !reloaded.generate(input).isEmpty)
        }
    }

    /// Stopping after step 3, saving, and resuming gives bit-identical weights and optimizer state to an
    /// uninterrupted run — with dropout, gradient accumulation, a two-task mixture and a warmup schedule.
    @Test(arguments: [false, true])
    func resumeContinuesExactly(adamW: Bool) throws {
        // Bit-exact comparisons: no other test may change the thread split meanwhile.
        try ParallelSettings.scoped {
            let model = try Fixtures.model(Self.modelName)
            let data = try tasks(model, count: 40)
            var o = TrainingOptions()
            o.optimizer = adamW ? .adamW(.init(learningRate: 3e-3)) : .adafactor(.fixed(learningRate: 1e-2))
            o.schedule = .linear
            o.warmupSteps = 2
            o.length = .steps(7)
            o.batchSize = 3
            o.gradientAccumulation = 2
            o.dropout = 0.1
            o.poolBatches = 4
            o.seed = 99
            let straight = try scratchDirectory("resume-straight"), split = try scratchDirectory("resume-split")
            defer { try? FileManager.default.removeItem(at: straight) }
            defer { try? FileManager.default.removeItem(at: split) }
            try Trainer(model: model, training: data, options: o, files: files(model)).run(output: straight)

            let first = try Trainer(model: model, training: data, options: o, files: files(model))
            try first.run(output: split, onStep: { $0.step == 3 ? .stop : .continue })
            #expect(first.completedSteps == 3)
            #expect(Checkpoint.checkpoints(in: split).map(\.step) == [3])
            let resumed = try Trainer.resume(from: split, training: data, options: o, files: files(model))
            #expect(resumed.completedSteps == 3)
            try resumed.run(output: split)

            for file in ["model.safetensors", "checkpoint-7/optimizer.safetensors"] {
                #expect(try Data(contentsOf: straight.appendingPathComponent(file)) == Data(contentsOf: split.appendingPathComponent(file)), "\(file) differs")
            }
            let a = try Checkpoint.loadState(from: straight.appendingPathComponent("checkpoint-7")).state
            let b = try Checkpoint.loadState(from: split.appendingPathComponent("checkpoint-7")).state
            #expect(a.position == b.position && a.examplesSeen == b.examplesSeen && a.tokensSeen == b.tokensSeen)
            let steps = try String(contentsOf: split.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
                .split(separator: "\n").filter { $0.contains("\"train\"") }.count
            #expect(steps == 7)
        }
    }

    @Test func resumeRefusesOtherSettings() throws {
        // Bit-exact comparisons: no other test may change the thread split meanwhile.
        try ParallelSettings.scoped {
            let model = try Fixtures.model(Self.modelName)
            let data = try tasks(model)
            var o = TrainingOptions()
            o.length = .steps(1)
            o.batchSize = 4
            let out = try scratchDirectory("resume-refuse")
            defer { try? FileManager.default.removeItem(at: out) }
            try Trainer(model: model, training: data, options: o, files: files(model)).run(output: out)
            o.batchSize = 8
            #expect(throws: T5Error.invalidOption(name: "Trainer.resume", reason: "the checkpoint at step 1 was made with different settings: batch_size was 4, now 8")) {
                try Trainer.resume(from: out, training: data, options: o, files: files(model))
            }
            let empty = try scratchDirectory("empty")
            defer { try? FileManager.default.removeItem(at: empty) }
            #expect(throws: T5Error.self) { try Trainer.resume(from: empty, training: data, options: o) }
        }
    }

    /// Two micro-batches accumulated give the gradient of the mean over all their target tokens: the same
    /// step as one batch holding both.
    @Test func gradientAccumulationIsTheTokenMean() throws {
        // Bit-exact comparisons: no other test may change the thread split meanwhile.
        try ParallelSettings.scoped {
            let model = try Fixtures.model(Self.modelName)
            let all = try tasks(model, count: 4).tasks[0]
            let data = try TrainingData(tasks: [all])
            func run(batch: Int, accumulation: Int) throws -> (Trainer, StepReport) {
                var o = TrainingOptions()
                o.optimizer = .adamW(.init(learningRate: 1e-2))
                o.batchSize = batch
                o.gradientAccumulation = accumulation
                o.length = .steps(1)
                o.dropout = 0
                o.maxGradNorm = 0
                let t = try Trainer(model: model, training: data, options: o)
                return (t, try t.step())
            }
            let (whole, r1) = try run(batch: 4, accumulation: 1)
            let (parts, r2) = try run(batch: 2, accumulation: 2)
            #expect(r1.targetTokens == r2.targetTokens)
            #expect(abs(r1.loss - r2.loss) <= 1e-5 * r1.loss)
            #expect(abs(r1.gradientNorm - r2.gradientNorm) <= 1e-4 * r1.gradientNorm)
            for spec in whole.store.specs {
                let d = relativeL2(try #require(parts.store.values[spec.key]).array, try #require(whole.store.values[spec.key]).array)
                #expect(d <= 1e-5, "\(spec.key): \(d)")
            }
        }
    }

    @Test func seedDecidesEverything() throws {
        // Bit-exact comparisons: no other test may change the thread split meanwhile.
        try ParallelSettings.scoped {
            let model = try Fixtures.model(Self.modelName)
            let data = try tasks(model)
            func weights(seed: UInt64) throws -> [Float] {
                var o = TrainingOptions()
                o.length = .steps(3)
                o.batchSize = 4
                o.dropout = 0.2
                o.seed = seed
                let t = try Trainer(model: model, training: data, options: o)
                for _ in 0..<3 { try t.step() }
                return t.store.specs.flatMap { t.store.values[$0.key]?.array ?? [] }
            }
            #expect(try weights(seed: 5) == (try weights(seed: 5)))
            #expect(try weights(seed: 5) != (try weights(seed: 6)))
        }
    }

    @Test func evaluationAndCallbacks() throws {
        // Bit-exact comparisons: no other test may change the thread split meanwhile.
        try ParallelSettings.scoped {
            let model = try Fixtures.model(Self.modelName)
            let data = try tasks(model)
            var o = TrainingOptions()
            o.length = .steps(4)
            o.batchSize = 4
            o.evalEvery = 2
            o.evalGenerate = true
            o.evalMaxNewTokens = 8
            let trainer = try Trainer(model: model, training: data, validation: data, options: o)
            var steps = [Int](), evaluations = [EvaluationReport]()
            try trainer.run(onStep: { steps.append($0.step); return .continue }, onEvaluation: { evaluations.append($0) })
            #expect(steps == [1, 2, 3, 4])
            #expect(evaluations.map(\.step) == [2, 4])
            let e = try #require(evaluations.last)
            #expect(e.examples == data.exampleCount && e.tasks.map(\.examples) == data.tasks.map(\.examples.count))
            #expect(e.loss.isFinite && e.loss > 0)
            #expect((0...1).contains(e.tokenAccuracy) && (0...1).contains(e.exactMatch ?? -1))
            #expect(e.tokens == data.tasks.reduce(0) { $0 + $1.examples.reduce(0) { $0 + $1.targetIDs.count } })
        }
    }
}
