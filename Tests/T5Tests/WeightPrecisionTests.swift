import Foundation
import Testing
@testable import T5

/// bf16 / int8 weights: the C kernels against the widened fp32 weights, the exactness of bf16 storage for a
/// checkpoint that is bf16 already, and the converted checkpoints.
@Suite struct WeightPrecisionTests {
    @Test(arguments: [(1, 13, 37), (2, 7, 5), (3, 8, 64), (5, 9, 16), (13, 6, 100), (16, 21, 33), (17, 40, 48), (70, 130, 19), (6, 10, 2100)])
    func lowPrecisionProductsMatchTheWidenedWeights(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let w = Tensor(shape: [n, k], values: KernelTests.values(n * k, seed: 11))
        let x = KernelTests.values(m * k, seed: 12)
        for precision in [WeightPrecision.bf16, .int8] {
            let matrix = WeightMatrix(w).converted(to: precision)
            let widened = matrix.widened()
            let expected = KernelTests.naiveProduct(x, widened.array, m: m, n: n, k: k, transposeB: true)
            for accumulate in [false, true] {
                var y = [Float](repeating: 0.5, count: m * n)
                x.withUnsafeBufferPointer { px in y.withUnsafeMutableBufferPointer { py in
                    GEMM.linear(px.baseAddress!, rows: m, weight: matrix, into: py.baseAddress!, accumulate: accumulate)
                } }
                let worst = zip(y, expected).map { abs(Double($0) - $1 - (accumulate ? 0.5 : 0)) }.max() ?? 0
                #expect(worst < 1e-4, "\(precision) m \(m) n \(n) k \(k) accumulate \(accumulate): \(worst)")
            }
        }
    }

    @Test func quantizationErrorIsBounded() {
        let w = Tensor(shape: [8, 100], values: KernelTests.values(800, seed: 5))
        let int8 = WeightMatrix(w).converted(to: .int8).widened().array
        let bf16 = WeightMatrix(w).converted(to: .bf16).widened().array
        for r in 0..<8 {
            let row = w.array[(r * 100)..<((r + 1) * 100)]
            let largest = row.map(abs).max() ?? 0
            for i in 0..<100 {
                #expect(abs(int8[r * 100 + i] - w.array[r * 100 + i]) <= largest / 254 * 1.0001)
                #expect(abs(bf16[r * 100 + i] - w.array[r * 100 + i]) <= abs(w.array[r * 100 + i]) / 256)
            }
        }
    }

    /// The BF16 fixture checkpoint holds exactly bf16 values, so keeping them as bf16 must reproduce
    /// transformers' fp32 answers (the reference computed from the same values widened).
    @Test func bf16CheckpointInBF16IsExact() throws {
        let name = "t5-gated-silu-bf16"
        let model = try T5Model(directory: Fixtures.modelDirectory(name), weights: .bf16)
        #expect(model.weightPrecision == .bf16)
        let ref = try Fixtures.reference(ModelReference.self, "reference/\(name).json")
        for c in ref.score {
            let scored = try model.score(input: c.input, target: c.target)
            #expect(firstMismatch(scored.logprobs, c.logprobs, tolerance: 1e-4) == nil)
        }
        for c in ref.greedy.prefix(3) {
            let o = c.options
            #expect(try model.generate(ids: [c.input_ids], options: o)[0][0].ids == c.ids)
        }
    }

    @Test(arguments: [WeightPrecision.f32, .bf16, .int8])
    func convertedCheckpointReloadsToTheSameModel(precision: WeightPrecision) throws {
        let source = Fixtures.modelDirectory("t5-relu-tied")
        let inMemory = try T5Model(directory: source, weights: precision)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("t5-convert-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        try inMemory.write(to: out)
        try FileManager.default.copyItem(at: source.appendingPathComponent("spiece.model"), to: out.appendingPathComponent("spiece.model"))
        // Without `weights:`, a converted directory loads at the precision it was saved in.
        let reloaded = try T5Model(directory: out)
        #expect(reloaded.weightPrecision == precision)
        // int8 is stored where transformers does not look (it would read the bytes as floats).
        let file = precision == .int8 ? "model.int8.safetensors" : "model.safetensors"
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("model.safetensors").path) == (precision != .int8))
        let a = try inMemory.score(input: "summarize: the cat sat", target: "a cat")
        let b = try reloaded.score(input: "summarize: the cat sat", target: "a cat")
        #expect(a.logprobs == b.logprobs, "\(precision): \(a.logprobs) vs \(b.logprobs)")
        // The written file is smaller for narrower weights.
        let size = try FileManager.default.attributesOfItem(atPath: out.appendingPathComponent(file).path)[.size] as? Int ?? 0
        let original = try FileManager.default.attributesOfItem(atPath: source.appendingPathComponent("model.safetensors").path)[.size] as? Int ?? 0
        if precision == .f32 { #expect(size <= original + 64) } else { #expect(size > 0) }
    }

    /// The accuracy cost on every fixture: mean |Δ log-prob| per target token against transformers' fp32
    /// answers, and greedy agreement. Bounds are loose sanity limits; the measured figures are printed.
    @Test(arguments: Fixtures.modelNames)
    func accuracyCostOnFixtures(name: String) throws {
        let ref = try Fixtures.reference(ModelReference.self, "reference/\(name).json")
        for precision in [WeightPrecision.bf16, .int8] {
            let model = try T5Model(directory: Fixtures.modelDirectory(name), weights: precision)
            var total = 0.0, count = 0
            for c in ref.score {
                let scored = try model.score(inputIDs: c.input_ids, targetIDs: c.target_ids)
                for (a, b) in zip(scored.logprobs, c.logprobs) { total += Double(abs(a - b)); count += 1 }
            }
            var agree = 0, tokens = 0
            for c in ref.greedy {
                let ids = try model.generate(ids: [c.input_ids], options: c.options)[0][0].ids
                // Agreement up to the first divergence (after it the prefixes differ).
                let same = zip(ids, c.ids).prefix { $0 == $1 }.count
                agree += same
                tokens += c.ids.count
            }
            let meanDelta = total / Double(max(count, 1))
            print("accuracy \(name) \(precision): mean |Δ log-prob| \(meanDelta), greedy prefix agreement \(agree)/\(tokens)")
            #expect(meanDelta < (precision == .bf16 ? 0.5 : 1.0), "\(name) \(precision) mean |Δ log-prob| \(meanDelta)")
        }
    }
}
