/// `C (m, rows) (+)= A (m, k) · Bᵀ` for few rows of A (m ≤ 16) against a weight B stored `[out, in]`.
///
/// Decoding is memory-bound: every weight is read once per step and used by only m rows. This kernel reads
/// four weight rows at a time from memory once, then reuses them from L1 for every row of A, so the
/// weights stream at memory bandwidth whatever m is. The k loop is 16 lanes wide with fused multiply-adds.
enum SkinnyGEMM {
    static let maxRows = 16
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
        var o = rows.lowerBound
        // Four weight rows at a time.
        while o + 4 <= rows.upperBound {
            let b0 = b + o * ldb, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb
            for r in 0..<m {
                let x = a + r * lda
                var s0 = V(), s1 = V(), s2 = V(), s3 = V()
                var i = 0
                while i < kVector {
                    let xv = Vector.load(x + i)
                    s0 = s0.addingProduct(Vector.load(b0 + i), xv)
                    s1 = s1.addingProduct(Vector.load(b1 + i), xv)
                    s2 = s2.addingProduct(Vector.load(b2 + i), xv)
                    s3 = s3.addingProduct(Vector.load(b3 + i), xv)
                    i += w
                }
                var t0 = s0.sum(), t1 = s1.sum(), t2 = s2.sum(), t3 = s3.sum()
                while i < k {
                    let xi = x[i]
                    t0 += b0[i] * xi; t1 += b1[i] * xi; t2 += b2[i] * xi; t3 += b3[i] * xi
                    i += 1
                }
                let out = c + r * ldc + o
                if accumulate {
                    out[0] += t0; out[1] += t1; out[2] += t2; out[3] += t3
                } else {
                    out[0] = t0; out[1] = t1; out[2] = t2; out[3] = t3
                }
            }
            o += 4
        }
        // The remaining 0-3 weight rows.
        while o < rows.upperBound {
            let row = b + o * ldb
            for r in 0..<m {
                let t = Vector.dot(a + r * lda, row, k)
                if accumulate { c[r * ldc + o] += t } else { c[r * ldc + o] = t }
            }
            o += 1
        }
    }
}
