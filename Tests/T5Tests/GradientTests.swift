import Foundation
import Testing
@testable import T5

/// The training forward and backward against PyTorch autograd (Tests/Fixtures/training), plus the
/// properties the trainer relies on: frozen parameters, gradient accumulation, evaluation, dropout.
@Suite struct GradientTests {
    static let variants = TrainingFixtures.variants

    /// Every trainable key's gradient against the reference; returns the worst relative L2 error.
    @discardableResult
    func expectGradients(_ store: ParameterStore, match expected: [String: [Float]], label: String, skip: Set<String> = []) -> Double {
        var worst = 0.0, worstKey = ""
        for spec in store.specs where !skip.contains(spec.key) {
            guard let reference = expected[spec.key] else {
                Issue.record("\(label): no reference gradient for \(spec.key)")
                continue
            }
            guard let gradient = store.gradients[spec.key] else {
                Issue.record("\(label): no gradient buffer for \(spec.key)")
                continue
            }
            let error = relativeL2(gradient.array, reference)
            #expect(error <= 1e-4, "\(label) \(spec.key): relative L2 error \(error)")
            if error > worst { worst = error; worstKey = spec.key }
        }
        print("\(label): max gradient relative L2 error \(worst) (\(worstKey))")
        return worst
    }

    @Test(arguments: variants) func lossAndGradientsMatchPyTorch(variant: String) throws {
        let reference = try TrainingFixtures.reference(variant)
        let store = ParameterStore(model: try TrainingFixtures.model(variant))
        #expect(store.hasSeparateLMHead == !reference.tied)
        var generator = SeededGenerator(seed: 1)
        let result = store.accumulateGradients(
            try TrainingFixtures.batch(variant), dropoutRate: 0, labelSmoothing: 0, generator: &generator)
        #expect(abs(result.loss - reference.loss) <= 1e-5 * abs(reference.loss), "\(variant) loss \(result.loss) vs \(reference.loss)")
        print("\(variant): loss \(result.loss) vs PyTorch \(reference.loss) (relative \(abs(result.loss - reference.loss) / reference.loss))")
        #expect(result.tokens == reference.tokens)
        #expect(result.correct == reference.correct)
        let expected = try TrainingFixtures.tensors(variant, reference.grads)
        #expect(Set(expected.keys) == Set(store.specs.map(\.key)), "\(variant): gradient keys differ from the parameter table")
        expectGradients(store, match: expected, label: variant)
    }

    @Test func labelSmoothingMatchesPyTorch() throws {
        for variant in Self.variants {
            let reference = try TrainingFixtures.reference(variant)
            guard let smoothing = reference.label_smoothing else { continue }
            let store = ParameterStore(model: try TrainingFixtures.model(variant))
            var generator = SeededGenerator(seed: 1)
            let result = store.accumulateGradients(
                try TrainingFixtures.batch(variant), dropoutRate: 0, labelSmoothing: smoothing.epsilon, generator: &generator)
            #expect(abs(result.loss - smoothing.loss) <= 1e-5 * abs(smoothing.loss), "\(variant) smoothed loss \(result.loss) vs \(smoothing.loss)")
            #expect(abs(result.loss - reference.loss) > 1e-3, "label smoothing did not change the loss")
            expectGradients(store, match: try TrainingFixtures.tensors(variant, smoothing.grads), label: "\(variant) label smoothing \(smoothing.epsilon)")
            // evaluate() computes the same smoothed loss.
            let evaluated = store.evaluate(try TrainingFixtures.batch(variant), labelSmoothing: smoothing.epsilon)
            #expect(abs(evaluated.loss - smoothing.loss) <= 1e-5 * abs(smoothing.loss))
        }
    }

    @Test(arguments: variants) func frozenKeysGetNoGradientAndTheOthersAreUnchanged(variant: String) throws {
        let reference = try TrainingFixtures.reference(variant)
        let model = try TrainingFixtures.model(variant)
        // The embedding (and tied head), one bias table, a cross-attention projection, a norm, a feed-forward input.
        let gated = model.config.isGatedActivation
        let frozen: Set<String> = [
            "shared.weight",
            "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            "decoder.block.0.layer.1.EncDecAttention.k.weight",
            "decoder.block.1.layer.0.layer_norm.weight",
            gated ? "encoder.block.0.layer.1.DenseReluDense.wi_1.weight" : "encoder.block.0.layer.1.DenseReluDense.wi.weight",
        ]
        let store = ParameterStore(model: model, frozen: frozen)
        for key in frozen { #expect(store.gradients[key] == nil, "\(key) is frozen but has a gradient buffer") }
        #expect(store.trainable == Set(store.specs.map(\.key)).subtracting(frozen))
        #expect(Set(store.gradients.keys) == store.trainable)
        var generator = SeededGenerator(seed: 1)
        let result = store.accumulateGradients(
            try TrainingFixtures.batch(variant), dropoutRate: 0, labelSmoothing: 0, generator: &generator)
        #expect(abs(result.loss - reference.loss) <= 1e-5 * abs(reference.loss))
        // Freezing skips weight gradients only: activations still carry the gradient through frozen weights.
        expectGradients(store, match: try TrainingFixtures.tensors(variant, reference.grads), label: "\(variant) frozen", skip: frozen)
    }

    @Test(arguments: variants) func accumulatingHalfBatchesEqualsTheFullBatch(variant: String) throws {
        let batch = try TrainingFixtures.batch(variant)
        let model = try TrainingFixtures.model(variant)
        let full = ParameterStore(model: model)
        var generator = SeededGenerator(seed: 1)
        let whole = full.accumulateGradients(batch, dropoutRate: 0, labelSmoothing: 0.1, generator: &generator)

        let halves = [
            TrainingBatch(inputIDs: Array(batch.inputIDs[..<2]), targetIDs: Array(batch.targetIDs[..<2])),
            TrainingBatch(inputIDs: Array(batch.inputIDs[2...]), targetIDs: Array(batch.targetIDs[2...])),
        ]
        let split = ParameterStore(model: model)
        var weightedLoss: Float = 0
        for half in halves {
            let share = Float(half.targetTokenCount) / Float(batch.targetTokenCount)
            let r = split.accumulateGradients(half, dropoutRate: 0, labelSmoothing: 0.1, generator: &generator, lossScale: share)
            weightedLoss += share * r.loss
        }
        #expect(abs(weightedLoss - whole.loss) <= 1e-5 * whole.loss)
        var worst = 0.0
        for spec in full.specs {
            let error = relativeL2(split.gradients[spec.key]?.array ?? [], full.gradients[spec.key]?.array ?? [])
            #expect(error <= 1e-5, "\(variant) \(spec.key): accumulated vs full relative L2 \(error)")
            worst = max(worst, error)
        }
        // A second call adds: the gradients double.
        let doubled = ParameterStore(model: model)
        _ = doubled.accumulateGradients(batch, dropoutRate: 0, labelSmoothing: 0.1, generator: &generator)
        _ = doubled.accumulateGradients(batch, dropoutRate: 0, labelSmoothing: 0.1, generator: &generator)
        for spec in full.specs {
            let twice = (full.gradients[spec.key]?.array ?? []).map { 2 * $0 }
            #expect(relativeL2(doubled.gradients[spec.key]?.array ?? [], twice) <= 1e-6, "\(spec.key) does not accumulate")
        }
        doubled.zeroGradients()
        #expect(doubled.gradients.values.allSatisfy { $0.array.allSatisfy { $0 == 0 } })
    }

    @Test(arguments: variants) func evaluateMatchesPyTorchAndLeavesGradientsAlone(variant: String) throws {
        let reference = try TrainingFixtures.reference(variant)
        let store = ParameterStore(model: try TrainingFixtures.model(variant))
        let result = store.evaluate(try TrainingFixtures.batch(variant))
        #expect(abs(result.loss - reference.loss) <= 1e-5 * abs(reference.loss))
        #expect(result.tokens == reference.tokens && result.correct == reference.correct)
        #expect(store.gradients.values.allSatisfy { $0.array.allSatisfy { $0 == 0 } })
    }

    @Test(arguments: variants) func storeCopiesTheCheckpointAndModelsViewTheStore(variant: String) throws {
        let model = try TrainingFixtures.model(variant)
        let archive = try SafeTensorsArchive(directory: TrainingFixtures.directory(variant))
        let store = ParameterStore(model: model)
        #expect(store.specs.map(\.key) == T5Parameters.specs(for: model.config, separateLMHead: model.hasSeparateLMHead).map(\.key))
        #expect(Set(store.values.keys) == Set(store.specs.map(\.key)))
        let viewed = store.makeModel(tokenizer: model.tokenizer)
        let viewedKeys = viewed.weights.byKey(config: model.config, separateLMHead: model.hasSeparateLMHead)
        for spec in store.specs {
            // Each key holds that key's checkpoint tensor (the walk in byKey inverts T5Weights.init) ...
            let stored = try archive.tensor(spec.key)
            #expect(store.values[spec.key]?.array == stored.array, "\(spec.key) differs from the checkpoint")
            // ... in memory of its own, which the made model reads in place.
            #expect(store.values[spec.key]?.storage !== stored.storage)
            #expect(viewedKeys[spec.key]?.pointer == store.values[spec.key]?.pointer, "\(spec.key) is copied by makeModel")
        }
        // The made model computes what the checkpoint computes.
        let ids = try TrainingFixtures.batch(variant).inputIDs
        #expect(try viewed.encode(ids).hidden.array == model.encode(ids).hidden.array)
    }

    /// With dropout the loss is a deterministic function of the weights for a fixed seed, so the gradient can be
    /// checked against a central difference along a random direction: this checks that every mask the forward
    /// draws is the one its backward applies.
    @Test(arguments: variants) func dropoutGradientMatchesFiniteDifference(variant: String) throws {
        let batch = try TrainingFixtures.batch(variant)
        let store = ParameterStore(model: try TrainingFixtures.model(variant))
        let rate: Float = 0.2
        func loss(seed: UInt64) -> Float {
            var g = SeededGenerator(seed: seed)
            let r = store.accumulateGradients(batch, dropoutRate: rate, labelSmoothing: 0, generator: &g)
            return r.loss
        }
        let base = loss(seed: 7)
        #expect(loss(seed: 7) == base, "same seed, different loss")
        #expect(loss(seed: 8) != base, "dropout has no effect")
        #expect(abs(store.evaluate(batch).loss - base) > 1e-3, "dropout has no effect")
        store.zeroGradients()
        _ = loss(seed: 7)
        // A random unit direction u over every parameter; the directional derivative is g·u.
        var rng = SeededGenerator(seed: 99)
        var direction = [String: [Float]]()
        var norm = 0.0
        for spec in store.specs {
            let u = (0..<spec.shape.reduce(1, *)).map { _ in rng.nextUnit() * 2 - 1 }
            norm += u.reduce(0.0) { $0 + Double($1 * $1) }
            direction[spec.key] = u
        }
        var analytic = 0.0
        for spec in store.specs {
            let g = store.gradients[spec.key]?.array ?? []
            for (a, b) in zip(g, direction[spec.key] ?? []) { analytic += Double(a) * Double(b) }
        }
        analytic /= norm.squareRoot()
        func shifted(_ step: Float) -> Float {
            let scale = step / Float(norm.squareRoot())
            for spec in store.specs {
                let p = store.values[spec.key]!.pointer, u = direction[spec.key]!
                for i in u.indices { p[i] += scale * u[i] }
            }
            defer {
                for spec in store.specs {
                    let p = store.values[spec.key]!.pointer, u = direction[spec.key]!
                    for i in u.indices { p[i] -= scale * u[i] }
                }
            }
            return loss(seed: 7)
        }
        let h: Float = 1e-2
        let numeric = Double(shifted(h) - shifted(-h)) / Double(2 * h)
        let error = abs(numeric - analytic) / max(abs(analytic), 1e-3)
        print("\(variant) dropout \(rate): directional derivative \(analytic) vs central difference \(numeric) (relative \(error))")
        #expect(error <= 2e-2, "\(variant): directional derivative \(analytic) vs finite difference \(numeric)")
    }
}
