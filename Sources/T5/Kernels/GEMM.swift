import CBLAS

/// The only caller of BLAS. Every dense product of the runtime goes through `GEMM.multiply`.
enum GEMM {
    /// `C = alpha · op(A) · op(B) + beta · C`, row-major, where `op(X)` is `X` or `Xᵀ`.
    ///
    /// `C` is (m, n), `op(A)` is (m, k), `op(B)` is (k, n); `lda`, `ldb`, `ldc` are the row strides of the
    /// matrices as stored. A single-row product goes to `sgemv`: OpenBLAS 0.3.21's `sgemm` with m = 1 is
    /// 2-4x slower than `sgemv` on the same data, and decoding at batch 1 is nothing but such products.
    @inline(__always)
    static func multiply(
        m: Int, n: Int, k: Int,
        _ a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
        _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
        _ c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float = 1, beta: Float = 0
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched for alpha·0 only when beta = 1; make the empty product explicit.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        if m == 1 {
            // c (1, n) = a (1, k) · op(B): a gemv over B, with a's elements strided by lda when A is transposed.
            let incx = Int32(transposeA ? lda : 1)
            if transposeB {
                // B is stored (n, k): c = B · a
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), alpha, b, Int32(ldb), a, incx, beta, c, 1)
            } else {
                // B is stored (k, n): c = Bᵀ · a
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), alpha, b, Int32(ldb), a, incx, beta, c, 1)
            }
            return
        }
        cblas_sgemm(
            CblasRowMajor,
            transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb),
            beta, c, Int32(ldc)
        )
    }

    /// `Y (rows, out) (+)= X (rows, in) · Wᵀ` for a weight stored `[out, in]`, the shape of every T5 projection.
    @inline(__always)
    static func linear(
        _ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
        weight: UnsafePointer<Float>, outFeatures: Int,
        into y: UnsafeMutablePointer<Float>, accumulate: Bool = false
    ) {
        multiply(
            m: rows, n: outFeatures, k: inFeatures,
            x, lda: inFeatures,
            weight, ldb: inFeatures, transposeB: true,
            y, ldc: outFeatures, beta: accumulate ? 1 : 0)
    }

    /// Sets the number of threads OpenBLAS may use (T5's decode steps are memory-bound: more threads than
    /// cores only adds contention).
    static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(max(1, n)))
    }
}

extension GEMM {
    /// Backward of `linear` (Y = X · Wᵀ, W stored `[out, in]`), both results accumulated:
    ///
    ///     dX (rows, in)      += dY (rows, out) · W (out, in)
    ///     dWeight (out, in)  += dYᵀ · X                         (skipped when nil: a frozen weight)
    @inline(__always)
    static func linearBackward(
        _ dY: UnsafePointer<Float>, rows: Int, outFeatures: Int,
        x: UnsafePointer<Float>, inFeatures: Int, weight: UnsafePointer<Float>,
        dX: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?
    ) {
        multiply(
            m: rows, n: inFeatures, k: outFeatures,
            dY, lda: outFeatures, weight, ldb: inFeatures,
            dX, ldc: inFeatures, beta: 1)
        if let dWeight {
            weightGradient(dY, rows: rows, outFeatures: outFeatures, x: x, inFeatures: inFeatures, dWeight: dWeight)
        }
    }

    /// dWeight (out, in) += dY (rows, out)ᵀ · X (rows, in): the weight half of `linearBackward`, for a
    /// projection whose input gradient goes elsewhere.
    @inline(__always)
    static func weightGradient(
        _ dY: UnsafePointer<Float>, rows: Int, outFeatures: Int,
        x: UnsafePointer<Float>, inFeatures: Int, dWeight: UnsafeMutablePointer<Float>
    ) {
        multiply(
            m: outFeatures, n: inFeatures, k: rows,
            dY, lda: outFeatures, transposeA: true, x, ldb: inFeatures,
            dWeight, ldc: inFeatures, beta: 1)
    }
}
