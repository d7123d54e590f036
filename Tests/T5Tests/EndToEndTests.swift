import Foundation
import Testing
@testable import T5

/// Trains a tiny T5 from scratch on a synthetic mixture of three prefix tasks and checks that it learns.
///
/// The tasks (as tools/make_synthetic_tasks.py writes them for the CLI):
///     "reverse: 3 1 4 1 5" → "5 1 4 1 3"     "sort: 3 1 4 1 5" → "1 1 3 4 5"     "add: 7 5" → "12"
/// Guessing gets essentially no reverse or sort example right and about 1 in 19 additions, so chance
/// exact match over the mixture is under 2%.
@Suite struct EndToEndTests {
    static let config = T5Config(
        vocabSize: 512, dModel: 64, dKV: 16, dFF: 256, numLayers: 2, numHeads: 4,
        relativeAttentionNumBuckets: 32, relativeAttentionMaxDistance: 128, dropoutRate: 0,
        activation: .relu, tieWordEmbeddings: true)

    /// `count` examples of each task, drawn from `seed`; validation examples do not repeat training ones
    /// (except for add, whose 100 sums cannot be split).
    static func mixture(_ tokenizer: T5Tokenizer, count: Int, seed: UInt64, excluding: Set<String> = []) -> (data: [TaskData], keys: Set<String>) {
        var generator = SeededGenerator(seed: seed)
        func digits() -> [Int] { (0..<(3 + generator.uniformIndex(below: 4))).map { _ in generator.uniformIndex(below: 10) } }
        func text(_ d: [Int]) -> String { d.map(String.init).joined(separator: " ") }
        var keys = Set<String>()
        var tasks = [TaskData]()
        for name in ["reverse", "sort", "add"] {
            var examples = [TokenizedExample]()
            while examples.count < count {
                let input: String, target: String
                switch name {
                case "reverse":
                    let d = digits()
                    (input, target) = (text(d), text(d.reversed()))
                case "sort":
                    let d = digits()
                    (input, target) = (text(d), text(d.sorted()))
                default:
                    let a = generator.uniformIndex(below: 10), b = generator.uniformIndex(below: 10)
                    (input, target) = ("\(a) \(b)", "\(a + b)")
                }
                let key = "\(name): \(input)"
                if name != "add" && excluding.contains(key) { continue }
                keys.insert(key)
                examples.append(TokenizedExample(inputIDs: tokenizer.encode("\(name): " + input), targetIDs: tokenizer.encode(target)))
            }
            tasks.append(TaskData(source: TaskSource(prefix: "\(name): ", path: name), examples: examples))
        }
        return (tasks, keys)
    }

    @Test func tinyModelLearnsAPrefixMixtureFromScratch() throws {
        let started = Date()
        let tokenizer = try T5Tokenizer(modelFile: Fixtures.root.appendingPathComponent("spm/spiece.model"))
        let train = Self.mixture(tokenizer, count: 2000, seed: 1)
        let valid = Self.mixture(tokenizer, count: 60, seed: 2, excluding: train.keys)
        let model = try T5Model.randomlyInitialized(config: Self.config, tokenizer: tokenizer, seed: 3)
        var o = TrainingOptions()
        o.optimizer = .adamW(.init(learningRate: 3e-3))
        o.schedule = .linear
        o.warmupSteps = 50
        o.length = .steps(700)
        o.batchSize = 32
        o.evalGenerate = true
        o.evalMaxNewTokens = 12
        o.evalBatchSize = 64
        let trainer = try Trainer(model: model, training: try TrainingData(tasks: train.data), validation: try TrainingData(tasks: valid.data), options: o)
        let before = try #require(trainer.evaluate())
        var losses = [Double]()
        try trainer.run(onStep: { losses.append($0.loss); return .continue })
        let after = try #require(trainer.evaluate())
        let seconds = Date().timeIntervalSince(started)
        let perTask = after.tasks.map { "\($0.name) \(String(format: "%.0f%%", 100 * ($0.exactMatch ?? 0)))" }.joined(separator: ", ")
        print(String(format: "end-to-end: validation loss %.3f -> %.3f, token accuracy %.1f%% -> %.1f%%, exact match %.1f%% -> %.1f%% (%@), %d steps in %.1f s",
                     before.loss, after.loss, 100 * before.tokenAccuracy, 100 * after.tokenAccuracy,
                     100 * (before.exactMatch ?? 0), 100 * (after.exactMatch ?? 0), perTask, trainer.completedSteps, seconds))
        #expect(after.loss < 0.3 * before.loss, "validation loss \(before.loss) -> \(after.loss)")
        let emBefore = before.exactMatch ?? 1, emAfter = after.exactMatch ?? 0
        #expect(emBefore < 0.05)
        #expect(emAfter > 0.3, "exact match \(emAfter), chance is under 0.02")
        // Addition (100 distinct examples) is learnt first, then sorting; reversal takes longer (see README.md, Fine-tuning).
        let byTask = Dictionary(uniqueKeysWithValues: after.tasks.map { ($0.name, $0.exactMatch ?? 0) })
        #expect((byTask["add"] ?? 0) > 0.5 && (byTask["sort"] ?? 0) > 0.2, "\(perTask)")
        // The training loss falls too: the last 50 steps average well under the first 50.
        let first: Double = losses.prefix(50).reduce(0, +), last: Double = losses.suffix(50).reduce(0, +)
        #expect(last < 0.3 * first, "training loss \(first / 50) -> \(last / 50)")
    }
}
