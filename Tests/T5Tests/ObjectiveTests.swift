import Foundation
import Testing
@testable import T5

/// The `Objective` seam: the backward pass starts from whatever gradient the objective writes, and the
/// trainer minimizes the objective it is given.
@Suite struct ObjectiveTests {
    /// Twice cross-entropy: its loss is exactly twice, and since doubling is exact in floating point and the
    /// backward pass is linear in its starting gradient, every parameter gradient is exactly twice.
    struct Doubled: Objective {
        func evaluate(
            logits: UnsafeMutablePointer<Float>, rows: Int, vocab: Int, labels: UnsafePointer<Int32>,
            scratch: UnsafeMutablePointer<Float>, gradientScale: Float?
        ) -> LossResult {
            var r = CrossEntropyObjective().evaluate(logits: logits, rows: rows, vocab: vocab, labels: labels,
                                                     scratch: scratch, gradientScale: gradientScale.map { $0 * 2 })
            r.loss *= 2
            return r
        }
    }

    @Test func theBackwardStartsFromTheObjectivesGradient() throws {
        let batch = try TrainingFixtures.batch("t5-relu-tied")
        let plain = ParameterStore(model: try TrainingFixtures.model("t5-relu-tied"))
        let doubled = ParameterStore(model: try TrainingFixtures.model("t5-relu-tied"))
        var g1 = SeededGenerator(seed: 1), g2 = SeededGenerator(seed: 1)
        let a = plain.accumulateGradients(batch, objective: CrossEntropyObjective(), dropoutRate: 0, generator: &g1)
        let b = doubled.accumulateGradients(batch, objective: Doubled(), dropoutRate: 0, generator: &g2)
        #expect(b.loss == 2 * a.loss)
        var compared = 0
        for spec in plain.specs {
            guard let x = plain.gradients[spec.key], let y = doubled.gradients[spec.key] else { continue }
            let same = (0..<x.count).allSatisfy { y.pointer[$0] == 2 * x.pointer[$0] }
            #expect(same, "\(spec.key)")
            compared += 1
        }
        #expect(compared == plain.specs.count)
        // The label-smoothing entry point is cross-entropy's.
        let smoothed = ParameterStore(model: try TrainingFixtures.model("t5-relu-tied"))
        var g3 = SeededGenerator(seed: 1)
        let c = smoothed.accumulateGradients(batch, dropoutRate: 0, labelSmoothing: 0, generator: &g3)
        #expect(c.loss == a.loss)
    }

    @Test func theTrainerMinimizesItsObjective() throws {
        let model = try TrainingFixtures.model("t5-relu-tied")
        let batch = try TrainingFixtures.batch("t5-relu-tied")
        let examples = zip(batch.inputIDs, batch.targetIDs).map { TokenizedExample(inputIDs: $0, targetIDs: $1) }
        let data = try TrainingData(tasks: [TaskData(source: TaskSource(path: "fixture"), examples: examples)])
        var options = TrainingOptions()
        options.batchSize = examples.count
        options.length = .steps(1)
        options.dropout = 0
        let plain = try Trainer(model: model, training: data, options: options)
        let doubled = try Trainer(model: model, training: data, options: options, objective: Doubled())
        #expect(doubled.objective is Doubled)
        #expect(try doubled.step().loss == 2 * (try plain.step().loss))
    }
}
