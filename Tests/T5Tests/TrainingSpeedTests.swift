import Foundation
import Testing
@testable import T5

/// The fast paths of the training step against the plain loops they replace, on odd sizes: each must give
/// the same numbers (bit for bit where the operations are the same, within rounding where only the
/// summation order changed).
@Suite struct TrainingSpeedTests {
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
}
