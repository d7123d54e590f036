/// `C (m, rows) (+)= A (m, k) · Bᵀ` for few rows of A (m ≤ 4) against a weight B stored `[out, in]`.
///
/// Decoding is memory-bound: every weight is read once per step and used by only m rows. The kernel walks
/// the weight one row at a time, front to back (the access pattern the hardware prefetcher streams best:
/// measured 20-30% faster than interleaving four weight rows), and while that row is in L1 it is
/// multiplied with the rows of A four at a time, so each weight vector load feeds four fused multiply-adds.
enum SkinnyGEMM {
    /// Up to 4 rows (greedy and beam-4 steps) this kernel beats OpenBLAS's sgemm, which streams the weights
    /// far below the memory bandwidth for so few rows. Where the AVX-512 kernel of CKernels/sgemm_small.c
    /// runs, it takes 2 rows and more and this one keeps the single row, where it is as fast. Figures:
    /// tools/bench/RESULTS.md, "GEMM dispatch".
    static let maxRows = 4
    typealias V = Vector.V

    static func multiply(
        m: Int, rows: Range<Int>, k: Int,
        _ a: UnsafePointer<Float>, lda: Int,
        _ b: UnsafePointer<Float>, ldb: Int,
        _ c: UnsafeMutablePointer<Float>, ldc: Int,
        accumulate: Bool
    ) {
        let w = Vector.width
        let kVector = k / w * w
        @inline(__always) func store(_ value: Float, _ r: Int, _ o: Int) {
            if accumulate { c[r * ldc + o] += value } else { c[r * ldc + o] = value }
        }
        for o in rows {
            let weight = b + o * ldb
            var r = 0
            // Four rows of A per pass over the weight row.
            while r + 4 <= m {
                let x0 = a + r * lda, x1 = x0 + lda, x2 = x1 + lda, x3 = x2 + lda
                var s0 = V(), s1 = V(), s2 = V(), s3 = V()
                var i = 0
                while i < kVector {
                    let wv = Vector.load(weight + i)
                    s0 = s0.addingProduct(wv, Vector.load(x0 + i))
                    s1 = s1.addingProduct(wv, Vector.load(x1 + i))
                    s2 = s2.addingProduct(wv, Vector.load(x2 + i))
                    s3 = s3.addingProduct(wv, Vector.load(x3 + i))
                    i += w
                }
                var t0 = s0.sum(), t1 = s1.sum(), t2 = s2.sum(), t3 = s3.sum()
                while i < k {
                    let wi = weight[i]
                    t0 += wi * x0[i]; t1 += wi * x1[i]; t2 += wi * x2[i]; t3 += wi * x3[i]
                    i += 1
                }
                store(t0, r, o); store(t1, r + 1, o); store(t2, r + 2, o); store(t3, r + 3, o)
                r += 4
            }
            // The remaining rows of A (all of them at m = 1): a dot product with two accumulators.
            while r < m {
                store(Vector.dot(weight, a + r * lda, k), r, o)
                r += 1
            }
        }
    }
}
