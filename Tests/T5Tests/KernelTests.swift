import Foundation
import CKernels
import Testing
@testable import T5

/// The optimized kernels against naive Double loops, on odd shapes that exercise every tail.
@Suite struct KernelTests {
    /// Deterministic pseudo-random values in [-1, 1).
    static func values(_ n: Int, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<n).map { _ in g.nextUnit() * 2 - 1 }
    }

    static func naiveProduct(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transposeB: Bool) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k {
            c[i * n + j] += Double(a[i * k + p]) * Double(transposeB ? b[j * k + p] : b[p * n + j])
        } } }
        return c
    }

    @Test(arguments: [(1, 37, 19), (2, 9, 1), (3, 37, 19), (4, 8, 16), (7, 131, 67), (16, 130, 64), (17, 33, 5), (32, 67, 100), (33, 41, 48), (40, 200, 33), (128, 300, 64), (5, 20, 1100), (16, 9, 2100)])
    func gemmMatchesNaive(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        for transposeB in [true, false] {
            for threads in [1, 2] {
                ParallelSettings.scoped(threads: threads) {
                    let a = Self.values(m * k, seed: 1), b = Self.values(n * k, seed: 2), c0 = Self.values(m * n, seed: 3)
                    let expected = Self.naiveProduct(a, b, m: m, n: n, k: k, transposeB: transposeB)
                    for accumulate in [false, true] {
                        var c = c0
                        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                            GEMM.multiply(m: m, n: n, k: k, pa.baseAddress!, lda: k, pb.baseAddress!, ldb: transposeB ? k : n,
                                          transposeB: transposeB, pc.baseAddress!, ldc: n, beta: accumulate ? 1 : 0)
                        } } }
                        var worst = 0.0
                        for i in 0..<(m * n) {
                            let want = expected[i] + (accumulate ? Double(c0[i]) : 0)
                            worst = max(worst, abs(Double(c[i]) - want))
                        }
                        #expect(worst < 1e-4, "m \(m) n \(n) k \(k) transposeB \(transposeB) threads \(threads) accumulate \(accumulate): max error \(worst)")
                    }
                }
            }
        }
    }

    /// Weights packed once at load (the encoder's) against naive Double loops: several k slices (256 each),
    /// several 96-row blocks, partial 12-row tiles and 32-column panels, one and two threads.
    @Test(arguments: [(1, 37, 19), (13, 100, 300), (130, 70, 530), (32, 64, 256), (200, 33, 64)])
    func packedWeightsMatchNaive(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let w = Tensor(shape: [n, k], values: Self.values(n * k, seed: 31))
        let matrix = WeightMatrix(w).packedForProducts()
        #expect((matrix.packed != nil) == (t5_sgemm_available() != 0))
        let x = Self.values(m * k, seed: 32), c0 = Self.values(m * n, seed: 33)
        let expected = Self.naiveProduct(x, w.array, m: m, n: n, k: k, transposeB: true)
        for threads in [1, 2] {
            ParallelSettings.scoped(threads: threads) {
                for accumulate in [false, true] {
                    var y = c0
                    x.withUnsafeBufferPointer { px in y.withUnsafeMutableBufferPointer { py in
                        GEMM.linear(px.baseAddress!, rows: m, weight: matrix, into: py.baseAddress!, accumulate: accumulate)
                    } }
                    var worst = 0.0
                    for i in 0..<(m * n) { worst = max(worst, abs(Double(y[i]) - expected[i] - (accumulate ? Double(c0[i]) : 0))) }
                    #expect(worst < 1e-4, "m \(m) n \(n) k \(k) threads \(threads) accumulate \(accumulate): max error \(worst)")
                }
            }
        }
    }

    @Test func expMatchesLibm() {
        var worst: Float = 0
        var x: Float = -87
        while x < 20 {
            let v = Vector.exp(Vector.V(repeating: x))[0]
            let e = Foundation.exp(x)
            worst = max(worst, abs(v - e) / e)
            x += 0.0137
        }
        #expect(worst < 4e-7, "max relative error \(worst)")
        #expect(Vector.exp(Vector.V(repeating: -100))[0] == 0)
        #expect(Vector.exp(Vector.V(repeating: -.infinity))[0] == 0)
    }

    @Test(arguments: [1, 5, 16, 17, 100, 32128])
    func softmaxAndLogSumExp(n: Int) {
        let x = Self.values(n, seed: UInt64(n)).map { $0 * 30 }
        let m = Double(x.max()!)
        let sum = x.reduce(0.0) { $0 + Foundation.exp(Double($1) - m) }
        let lse = m + Foundation.log(sum)
        let got = x.withUnsafeBufferPointer { Softmax.logSumExp($0.baseAddress!, n) }
        #expect(abs(Double(got) - lse) < 1e-5 * max(1, abs(lse)))
        var p = x
        p.withUnsafeMutableBufferPointer { Softmax.forwardInPlace($0.baseAddress!, n) }
        for i in 0..<n {
            let want = Foundation.exp(Double(x[i]) - lse)
            #expect(abs(Double(p[i]) - want) < 1e-6, "index \(i)")
        }
    }

    @Test func activationsMatchTheirFormulas() {
        let x = Self.values(67, seed: 9).map { $0 * 6 }
        func check(_ kind: Activation, _ f: (Double) -> Double) {
            var y = x
            y.withUnsafeMutableBufferPointer { Activations.forward(kind, $0.baseAddress!, x.count) }
            for (xi, yi) in zip(x, y) {
                let want = f(Double(xi))
                #expect(abs(Double(yi) - want) < 2e-6 * max(1, abs(want)), "\(kind) at \(xi): \(yi) vs \(want)")
            }
        }
        let c = (2 / Double.pi).squareRoot()
        check(.relu) { max($0, 0) }
        check(.gelu) { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }
        check(.geluNew) { 0.5 * $0 * (1 + tanh(c * ($0 + 0.044715 * $0 * $0 * $0))) }
        check(.silu) { $0 / (1 + Foundation.exp(-$0)) }
        check(.quickGelu) { $0 / (1 + Foundation.exp(-1.702 * $0)) }
        check(.tanh) { tanh($0) }
        check(.sigmoid) { 1 / (1 + Foundation.exp(-$0)) }
        check(.mish) { $0 * tanh(log1p(Foundation.exp($0))) }
        check(.hardswish) { $0 * min(max($0 + 3, 0), 6) / 6 }
        check(.relu2) { let r = max($0, 0); return r * r }
        check(.leakyRelu) { $0 < 0 ? 0.01 * $0 : $0 }
    }

    /// The decode step's attention (one query against the cache, its own SIMD loops) against the Float64
    /// reference: key counts around its 4-key blocks, head sizes around its 64-dimension register blocks,
    /// strided rows, with the causal relative bias and without (cross-attention).
    @Test(arguments: [(1, 5), (3, 16), (4, 64), (5, 64), (9, 67), (33, 64), (20, 130), (8, 128)])
    func decodeStepAttentionMatchesReference(shape: (Int, Int)) {
        let (keys, dk) = shape
        let ld = dk + 3, maxDistance = 6
        let bias = Self.values(2 * maxDistance + 1, seed: 21).map { $0 * 2 }
        let q = Self.values(dk, seed: 22), k = Self.values(keys * ld, seed: 23), v = Self.values(keys * ld, seed: 24)
        func dense(_ x: [Float]) -> [Double] { (0..<keys).flatMap { j in x[(j * ld)..<(j * ld + dk)].map(Double.init) } }
        for causal in [true, false] {
            // The query sits at position keys - 1: the last row of a causal reference whose rows all equal q.
            let expected = Reference.attention(
                q: (0..<keys).flatMap { _ in q.map(Double.init) }, k: dense(k), v: dense(v),
                queries: keys, keyLength: keys, headDim: dk, causal: causal,
                bias: causal ? bias.map(Double.init) : nil, maxDistance: maxDistance, dropoutMask: nil
            ).suffix(dk)
            var out = [Float](repeating: .nan, count: dk), scores = [Float](repeating: 0, count: keys)
            bias.withUnsafeBufferPointer { b in q.withUnsafeBufferPointer { pq in k.withUnsafeBufferPointer { pk in
                v.withUnsafeBufferPointer { pv in scores.withUnsafeMutableBufferPointer { ps in out.withUnsafeMutableBufferPointer { po in
                    Attention.forward(
                        q: pq.baseAddress!, ldq: dk, keys: pk.baseAddress!, ldk: ld, values: pv.baseAddress!, ldv: ld,
                        queries: 1, keyLength: keys, headDim: dk, firstPosition: keys - 1, causal: causal,
                        bias: causal ? .relative(b.baseAddress! + maxDistance, maxDistance: maxDistance) : .none,
                        scores: ps.baseAddress!, out: po.baseAddress!, ldo: dk)
                } } }
            } } }
            let worst = zip(out, expected).map { abs(Double($0) - $1) }.max() ?? .nan
            #expect(worst < 1e-5, "keys \(keys) head \(dk) causal \(causal): max error \(worst)")
        }
    }
}
