import Foundation
import Testing
@testable import T5

/// The fast paths of the training step against the plain loops they replace, on odd sizes: each must give
/// the same numbers (bit for bit where the operations are the same, within rounding where only the
/// summation order changed).
@Suite(.serialized) struct TrainingSpeedTests {
    static func random(_ n: Int, _ range: ClosedRange<Float>, _ g: inout SeededGenerator) -> [Float] {
        (0..<n).map { _ in range.lowerBound + (range.upperBound - range.lowerBound) * g.nextUnit() }
    }

    // MARK: AdamW

    /// The scalar loop `AdamW.update` replaced (torch's single-tensor AdamW, fp32).
    static func adamWReference(
        _ p: inout [Float], _ g: [Float], _ m: inout [Float], _ v: inout [Float], _ c: AdamW.StepConstants
    ) {
        for i in p.indices {
            if let decay = c.decay { p[i] *= decay }
            let gi = g[i]
            m[i] += c.beta1Weight * (gi - m[i])
            v[i] = v[i] * c.beta2 + c.oneMinusBeta2 * (gi * gi)
            let denom = v[i].squareRoot() / c.biasCorrection2Sqrt + c.eps
            p[i] += c.negativeStepSize * (m[i] / denom)
        }
    }

    @Test(arguments: [1, 15, 16, 17, 37, 1000], [true, false])
    func adamWVectorLoopIsBitIdentical(count: Int, decay: Bool) {
        var g = SeededGenerator(seed: UInt64(count))
        let c = AdamW.StepConstants(
            decay: decay ? 1 - 1e-3 * 0.01 : nil, beta1Weight: 0.1, beta2: 0.999, oneMinusBeta2: Float(1 - 0.999),
            biasCorrection2Sqrt: Float((1 - pow(0.999, 3.0)).squareRoot()), negativeStepSize: Float(-(1e-3 / (1 - pow(0.9, 3.0)))),
            eps: 1e-8)
        var p = Self.random(count, -1...1, &g), m = Self.random(count, -0.1...0.1, &g), v = Self.random(count, 0...0.01, &g)
        let grad = Self.random(count, -1...1, &g)
        let pt = Tensor(shape: [count], values: p), mt = Tensor(shape: [count], values: m), vt = Tensor(shape: [count], values: v)
        let gt = Tensor(shape: [count], values: grad)
        for _ in 0..<3 {
            AdamW.update(pt.pointer, gradient: gt.pointer, expAvg: mt.pointer, expAvgSq: vt.pointer, count: count, constants: c)
            Self.adamWReference(&p, grad, &m, &v, c)
        }
        #expect(pt.array.map(\.bitPattern) == p.map(\.bitPattern), "parameters differ from the scalar loop")
        #expect(mt.array.map(\.bitPattern) == m.map(\.bitPattern), "exp_avg differs from the scalar loop")
        #expect(vt.array.map(\.bitPattern) == v.map(\.bitPattern), "exp_avg_sq differs from the scalar loop")
    }

    // MARK: Dropout

    /// `makeMask` compares the generator's 24-bit draws as integers; the masks must be those of
    /// `nextUnit() < rate`, draw for draw.
    @Test(arguments: [Float(0.1), 0.25, 0.5, Float(1) / 3, 1e-7, 0.9999, 0x1p-24, Float(0.1) + 0x1p-27] as [Float])
    func dropoutMaskIsTheNextUnitComparison(rate: Float) {
        let n = 5001
        var g1 = SeededGenerator(seed: 5), g2 = SeededGenerator(seed: 5)
        let mask = Tensor(zeros: [n])
        Dropout.makeMask(rate: rate, count: n, generator: &g1, into: mask.pointer)
        let keep = 1 / (1 - rate)
        let expected = (0..<n).map { _ in g2.nextUnit() < rate ? 0 : keep }
        #expect(mask.array == expected, "rate \(rate)")
        #expect(g1.next() == g2.next(), "different number of draws")
    }

    // MARK: The whole step

    /// Runs one step on a fresh store, with every parallel path forced onto two threads when `forced`.
    static func step(
        _ model: T5Model, _ batch: TrainingBatch, dropout: Float, smoothing: Float, forced: Bool, store: ParameterStore? = nil
    ) -> (ParameterStore, LossResult) {
        Parallel.withSettings(threads: forced ? 2 : nil, minimumCost: forced ? 0 : nil) {
            let store = store ?? ParameterStore(model: model)
            store.zeroGradients()
            var generator = SeededGenerator(seed: 11)
            let result = store.accumulateGradients(batch, dropoutRate: dropout, labelSmoothing: smoothing, generator: &generator)
            return (store, result)
        }
    }

    static func gradients(_ store: ParameterStore) -> [String: [Float]] {
        store.gradients.mapValues(\.array)
    }

    /// The fixtures are too small for the cost heuristic to split anything: force the threaded attention,
    /// linear backward, cross-entropy, RMSNorm and elementwise paths and compare with PyTorch's gradients
    /// and with the one-thread run, with and without dropout (whose masks must not depend on the split).
    @Test(arguments: TrainingFixtures.variants)
    func twoThreadPathsGiveTheSameGradients(variant: String) throws {
        let reference = try TrainingFixtures.reference(variant)
        let expected = try TrainingFixtures.tensors(variant, reference.grads)
        let model = try TrainingFixtures.model(variant), batch = try TrainingFixtures.batch(variant)

        let (forced, result) = Self.step(model, batch, dropout: 0, smoothing: 0, forced: true)
        #expect(abs(result.loss - reference.loss) <= 1e-5 * abs(reference.loss), "\(variant) loss \(result.loss) vs \(reference.loss)")
        #expect(result.correct == reference.correct)
        for spec in forced.specs {
            let error = relativeL2(forced.gradients[spec.key]?.array ?? [], expected[spec.key] ?? [])
            #expect(error <= 1e-4, "\(variant) \(spec.key) on two threads: relative L2 \(error) against PyTorch")
        }

        for dropout in [Float(0), 0.2] {
            let (one, r1) = Self.step(model, batch, dropout: dropout, smoothing: 0.1, forced: false)
            let (two, r2) = Self.step(model, batch, dropout: dropout, smoothing: 0.1, forced: true)
            #expect(abs(r1.loss - r2.loss) <= 1e-6 * abs(r1.loss), "\(variant) dropout \(dropout): loss \(r1.loss) vs \(r2.loss)")
            for spec in one.specs {
                let error = relativeL2(two.gradients[spec.key]?.array ?? [], one.gradients[spec.key]?.array ?? [])
                #expect(error <= 1e-5, "\(variant) dropout \(dropout) \(spec.key): two threads vs one, relative L2 \(error)")
            }
        }
    }

    /// The workspace hands the previous step's buffers to the next: a step after steps on other batch shapes
    /// (which grow and reuse the buffers differently) must give the gradients of a first step.
    @Test(arguments: TrainingFixtures.variants, [false, true])
    func reusedBuffersGiveIdenticalSteps(variant: String, forced: Bool) throws {
        let model = try TrainingFixtures.model(variant), batch = try TrainingFixtures.batch(variant)
        let (fresh, first) = Self.step(model, batch, dropout: 0.2, smoothing: 0, forced: forced)
        let expected = Self.gradients(fresh)
        let store = ParameterStore(model: model)
        let shorter = TrainingBatch(
            inputIDs: batch.inputIDs.map { Array($0.prefix(max(1, $0.count / 2))) },
            targetIDs: batch.targetIDs.map { Array($0.prefix(max(1, $0.count - 1))) })
        let longer = TrainingBatch(inputIDs: batch.inputIDs.map { $0 + $0 }, targetIDs: batch.targetIDs.map { $0 + $0 })
        for other in [longer, shorter, TrainingBatch(inputIDs: [batch.inputIDs[0]], targetIDs: [batch.targetIDs[0]])] {
            _ = Self.step(model, other, dropout: 0.2, smoothing: 0, forced: forced, store: store)
            _ = store.evaluate(other)
        }
        let (_, again) = Self.step(model, batch, dropout: 0.2, smoothing: 0, forced: forced, store: store)
        // Equal up to the summation order of a thread split (other suites toggle the forced paths meanwhile);
        // a stale buffer would be far off.
        #expect(abs(again.loss - first.loss) <= 1e-6 * abs(first.loss) && again.correct == first.correct)
        let actual = Self.gradients(store)
        for spec in store.specs {
            let error = relativeL2(actual[spec.key] ?? [], expected[spec.key] ?? [])
            #expect(error <= 1e-6, "\(variant) \(spec.key) differs after the workspace was reused: relative L2 \(error)")
        }
    }

    // MARK: The AVX-512 product

    /// op(A) · op(B) in Double, row-major, from arrays with row strides lda, ldb.
    static func naiveProduct(
        m: Int, n: Int, k: Int, _ a: [Float], lda: Int, transposeA: Bool, _ b: [Float], ldb: Int, transposeB: Bool
    ) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let x = transposeA ? a[p * lda + i] : a[i * lda + p]
                    let y = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(x) * Double(y)
                }
                c[i * n + j] = s
            }
        }
        return c
    }

    /// Shapes around the kernel's tile (12 x 32) and block (96 rows, 512 columns, 256 k) edges.
    static let productShapes = [(1, 1, 1), (13, 33, 7), (12, 32, 256), (25, 70, 257), (97, 515, 300), (200, 1100, 530)]

    @Test(arguments: productShapes, [(false, false), (false, true), (true, false), (true, true)])
    func productOnThisThreadMatchesNaive(shape: (Int, Int, Int), transposes: (Bool, Bool)) {
        let (m, n, k) = shape, (ta, tb) = transposes
        var g = SeededGenerator(seed: UInt64(m * 7 + n * 3 + k))
        // Row strides wider than the rows, and a C with extra columns that must stay untouched.
        let lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2
        let a = Self.random((ta ? k : m) * lda, -1...1, &g), b = Self.random((tb ? n : k) * ldb, -1...1, &g)
        let prefill = Self.random(m * ldc, -1...1, &g)
        let expected = Self.naiveProduct(m: m, n: n, k: k, a, lda: lda, transposeA: ta, b, ldb: ldb, transposeB: tb)
        for accumulate in [false, true] {
            let c = Tensor(shape: [m * ldc], values: prefill)
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    GEMM.productOnThisThread(
                        m: m, n: n, k: k, a.baseAddress!, lda: lda, transposeA: ta, b.baseAddress!, ldb: ldb, transposeB: tb,
                        c.pointer, ldc: ldc, accumulate: accumulate)
                }
            }
            let out = c.array
            var actual = [Float](), want = [Double]()
            for i in 0..<m {
                for j in 0..<n {
                    actual.append(out[i * ldc + j])
                    want.append(expected[i * n + j] + (accumulate ? Double(prefill[i * ldc + j]) : 0))
                }
                for j in n..<ldc { #expect(out[i * ldc + j] == prefill[i * ldc + j], "wrote past column \(n) in row \(i)") }
            }
            let error = relativeL2(actual.map(Double.init), want)
            #expect(error <= 1e-6, "\(m)x\(n)x\(k) transposes \(ta) \(tb) accumulate \(accumulate): relative L2 \(error)")
        }
    }

    @Test(arguments: [(17, 33, 7), (64, 1100, 515)])
    func threadedProductOnTwoThreadsMatchesNaive(shape: (Int, Int, Int)) {
        let (rows, outFeatures, inFeatures) = shape
        ParallelSettings.scoped(threads: 2, minimumCost: 0) {
            var g = SeededGenerator(seed: UInt64(rows))
            let x = Self.random(rows * inFeatures, -1...1, &g), w = Self.random(outFeatures * inFeatures, -1...1, &g)
            let expected = Self.naiveProduct(
                m: rows, n: outFeatures, k: inFeatures, x, lda: inFeatures, transposeA: false, w, ldb: inFeatures, transposeB: true)
            let xt = Tensor(shape: [rows, inFeatures], values: x), wt = Tensor(shape: [outFeatures, inFeatures], values: w)
            let y = Tensor(zeros: [rows, outFeatures])
            GEMM.threadedProduct(
                m: rows, n: outFeatures, k: inFeatures, xt.pointer, lda: inFeatures, transposeA: false,
                wt.pointer, ldb: inFeatures, transposeB: true, y.pointer, ldc: outFeatures, accumulate: false)
            #expect(relativeL2(y.array.map(Double.init), expected) <= 1e-6)
            GEMM.threadedProduct(
                m: rows, n: outFeatures, k: inFeatures, xt.pointer, lda: inFeatures, transposeA: false,
                wt.pointer, ldb: inFeatures, transposeB: true, y.pointer, ldc: outFeatures, accumulate: true)
            #expect(relativeL2(y.array.map(Double.init), expected.map { 2 * $0 }) <= 1e-6)
        }
    }

    @Test(arguments: [(5, 7, 3), (37, 70, 45), (300, 130, 600)], [(2, false), (2, true), (1, false)])
    func linearBackwardMatchesNaive(shape: (Int, Int, Int), setup: (threads: Int, frozen: Bool)) {
        let (rows, inFeatures, outFeatures) = shape
        ParallelSettings.scoped(threads: setup.threads, minimumCost: 0) {
            var g = SeededGenerator(seed: UInt64(rows + 1))
            let x = Self.random(rows * inFeatures, -1...1, &g), w = Self.random(outFeatures * inFeatures, -1...1, &g)
            let dY = Self.random(rows * outFeatures, -1...1, &g)
            let prefillX = Self.random(rows * inFeatures, -1...1, &g), prefillW = Self.random(outFeatures * inFeatures, -1...1, &g)
            // dX = dY · W, dW = dYᵀ · X, both added to what the buffers held.
            let expectedX = zip(Self.naiveProduct(
                m: rows, n: inFeatures, k: outFeatures, dY, lda: outFeatures, transposeA: false, w, ldb: inFeatures, transposeB: false),
                prefillX).map { $0 + Double($1) }
            let expectedW = zip(Self.naiveProduct(
                m: outFeatures, n: inFeatures, k: rows, dY, lda: outFeatures, transposeA: true, x, ldb: inFeatures, transposeB: false),
                prefillW).map { $0 + Double($1) }
            let xt = Tensor(shape: [rows, inFeatures], values: x), wt = Tensor(shape: [outFeatures, inFeatures], values: w)
            let dYt = Tensor(shape: [rows, outFeatures], values: dY)
            let dX = Tensor(shape: [rows, inFeatures], values: prefillX), dW = Tensor(shape: [outFeatures, inFeatures], values: prefillW)
            GEMM.linearBackward(
                dYt.pointer, rows: rows, outFeatures: outFeatures, x: xt.pointer, inFeatures: inFeatures, weight: wt.pointer,
                dX: dX.pointer, dWeight: setup.frozen ? nil : dW.pointer)
            #expect(relativeL2(dX.array.map(Double.init), expectedX) <= 1e-6, "dX")
            if setup.frozen {
                #expect(dW.array == prefillW, "a frozen weight's buffer changed")
            } else {
                #expect(relativeL2(dW.array.map(Double.init), expectedW) <= 1e-6, "dWeight")
            }
        }
    }

    // MARK: Gradient clipping

    @Test func clippingMatchesThePlainLoops() {
        var g = SeededGenerator(seed: 21)
        let sizes = [1, 7, 8, 9, 1000, 4099]
        let values = sizes.map { Self.random($0, -2...2, &g) }
        var expected = 0.0
        for v in values { for x in v { expected += Double(x) * Double(x) } }
        expected = expected.squareRoot()
        let tensors = values.map { Tensor(shape: [$0.count], values: $0) }
        let norm = GradientClipping.globalNorm(tensors)
        #expect(abs(norm - expected) <= 1e-12 * expected, "norm \(norm) vs \(expected)")
        #expect(GradientClipping.clip(tensors, maxNorm: 1) == norm)
        let coefficient = Float(1) / (Float(norm) + 1e-6)
        for (t, v) in zip(tensors, values) {
            #expect(t.array.map(\.bitPattern) == v.map { ($0 * coefficient).bitPattern }, "clipped values differ from x · coefficient")
        }
    }
}
