import Foundation
import Synchronization
import Testing
@testable import T5

/// `Finetuning`: the one-call library API over `Trainer`. Its answers must be the trainer's own (the same
/// run by hand gives the same weights), its events the run's steps, and stopping it must leave a checkpoint.
@Suite struct FinetuningTests {
    static let model = Fixtures.modelDirectory("t5-relu-tied")
    static let examples = (0..<12).map { i in
        TextExample(input: "reverse: \(i % 10) \((i * 7) % 10) \((i * 3) % 10)", target: "\((i * 3) % 10) \((i * 7) % 10) \(i % 10)")
    }

    func options(steps: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.batchSize = 4
        o.length = .steps(steps)
        o.dropout = 0
        return o
    }

    @Test func oneCallTrainsAsTheTrainerDoes() async throws {
        let dir = try scratchDirectory("finetuning-one-call")
        defer { try? FileManager.default.removeItem(at: dir) }
        let steps = Mutex<[Int]>([])
        let tuned = try await Finetuning.run(
            model: Self.model, train: [.examples("reverse", Self.examples)], options: options(steps: 3),
            freeze: ["embeddings"], output: dir.appendingPathComponent("out")
        ) { event in
            if case .step(let report) = event { steps.withLock { $0.append(report.step) } }
        }
        #expect(steps.withLock { $0 } == [1, 2, 3])

        // The same run written out by hand.
        let model = try T5Model(directory: Self.model, packWeights: false)
        let task = TaskData(name: "reverse", examples: Self.examples, tokenizer: model.tokenizer)
        let specs = T5Parameters.specs(for: model.config, separateLMHead: model.hasSeparateLMHead)
        let trainer = try Trainer(model: model, training: try TrainingData(tasks: [task]), options: options(steps: 3),
                                  frozen: try Freezing.frozenKeys(["embeddings"], parameters: specs))
        for _ in 0..<3 { _ = try trainer.step() }
        let a = try tuned.score(input: "reverse: 1 2 3", target: "3 2 1").logprobs
        let b = try trainer.model.score(input: "reverse: 1 2 3", target: "3 2 1").logprobs
        // Within 1e-4, not bit for bit: other tests may change the thread split of the gradient sums meanwhile.
        #expect(a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < 1e-4 }, "\(a) vs \(b)")
        let before = try model.score(input: "reverse: 1 2 3", target: "3 2 1").logprobs
        #expect(zip(a, before).contains { abs($0 - $1) > 1e-3 }, "training changed nothing")

        // The output directory is a model directory that loads to the same answers.
        let reloaded = try T5Model(directory: dir.appendingPathComponent("out"))
        #expect(try reloaded.score(input: "reverse: 1 2 3", target: "3 2 1").logprobs == a)
    }

    @Test func spanCorruptionTrainsAlongsideAndEvaluates() async throws {
        let dir = try scratchDirectory("finetuning-span-corruption")
        defer { try? FileManager.default.removeItem(at: dir) }
        let corpus = CorpusTests.path("docs.txt")
        var evaluations = 0
        let steps = Mutex<Int>(0)
        for try await event in Finetuning.events(
            model: Self.model, train: [.examples("reverse", Self.examples), .spanCorruption([corpus], inputLength: 16)],
            validation: [.spanCorruption([corpus], inputLength: 16)], options: options(steps: 2),
            output: dir.appendingPathComponent("out")) {
            switch event {
            case .step: steps.withLock { $0 += 1 }
            case .evaluation(let e):
                evaluations += 1
                // One pass of the corpus (108 tokens: 6 chunks of 17), each corrupted once: 5 target tokens each.
                #expect(e.examples == 6 && e.tokens == 30)
            }
        }
        #expect(steps.withLock { $0 } == 2 && evaluations == 1)
        let state = try String(contentsOf: dir.appendingPathComponent("out/checkpoint-2/trainer_state.json"), encoding: .utf8)
        #expect(state.contains("span corruption: input 16"))
    }

    @Test func eventsEndWithTheRunAndLeavingStopsIt() async throws {
        let dir = try scratchDirectory("finetuning-events")
        defer { try? FileManager.default.removeItem(at: dir) }
        var seen = 0
        for try await event in Finetuning.events(model: Self.model, train: [.examples("reverse", Self.examples)],
                                                  options: options(steps: 2), output: dir.appendingPathComponent("all")) {
            if case .step = event { seen += 1 }
        }
        #expect(seen == 2)

        // Leaving after the first step: training stops after its current step and saves that step. (A run
        // of a million steps: a tiny model makes 50 before the consumer's exit arrives.)
        let out = dir.appendingPathComponent("early")
        for try await event in Finetuning.events(model: Self.model, train: [.examples("reverse", Self.examples)],
                                                  options: options(steps: 1_000_000), output: out) {
            if case .step = event { break }
        }
        var saved: Int?
        for _ in 0..<200 where saved == nil {
            saved = Checkpoint.latest(in: out).flatMap { Int($0.lastPathComponent.dropFirst("checkpoint-".count)) }
            if saved == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let step = try #require(saved, "no checkpoint after leaving the loop")
        #expect(step < 1_000_000)
    }

    @Test func errorsComeBackAsT5Errors() async throws {
        let dir = try scratchDirectory("finetuning-errors")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("mine".utf8).write(to: dir.appendingPathComponent("notes.txt"))
        do {
            _ = try await Finetuning.run(model: Self.model, train: [.examples("reverse", Self.examples)], output: dir)
            Issue.record("wrote into a directory holding a user's file")
        } catch {
            #expect(error.description.contains("notes.txt"), "\(error.description)")
        }
        #expect(try String(contentsOf: dir.appendingPathComponent("notes.txt"), encoding: .utf8) == "mine")
        do {
            _ = try await Finetuning.run(model: Self.model, train: [.file("/nonexistent/data.jsonl")], output: dir.appendingPathComponent("o"))
            Issue.record("trained on a missing file")
        } catch {
            #expect(error.description.contains("/nonexistent/data.jsonl"), "\(error.description)")
        }
    }
}

/// Library errors name library fields; the command line prints the same errors with its flags.
@Suite struct ErrorNamingTests {
    @Test func libraryErrorsNameFieldsAndTheCLINamesFlags() throws {
        var options = GenerationOptions()
        options.numBeams = 2
        options.numReturnSequences = 3
        do {
            try options.validate()
            Issue.record("3 sequences from 2 beams validated")
        } catch {
            #expect(error.description == "invalid value for GenerationOptions.numReturnSequences: 3 exceeds GenerationOptions.numBeams 2")
        }
        let cli = CLITests()
        try cli.expectFailure(["generate", "--model", Fixtures.modelDirectory("t5-relu-tied").path, "--beams", "2", "--num-return-sequences", "3", "hi"],
                              "invalid value for --num-return-sequences: 3 exceeds --beams 2")
        try cli.expectFailure(["generate", "--model", Fixtures.modelDirectory("t5-relu-tied").path, "--max-input-tokens", "2", "a b c d e"],
                              "more than --max-input-tokens 2")
        let model = try Fixtures.model("t5-relu-tied")
        var limited = GenerationOptions()
        limited.maxInputTokens = 2
        #expect(throws: T5Error.inputTooLong(tokens: model.tokenizer.encode("a b c d e").count, limit: 2)) {
            try model.generate("a b c d e", options: limited)
        }
        #expect(T5Error.inputTooLong(tokens: 6, limit: 2).description == "input has 6 tokens, more than maxInputTokens 2")
    }
}
