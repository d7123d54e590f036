import CBLAS
import CKernels

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
        configureBLAS()
        if k == 0 {
            // BLAS leaves C untouched for alpha·0 only when beta = 1; make the empty product explicit.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        // 2-32 rows against a weight stored [out, in] (beam and batched decode steps, short prefills): the
        // unpacked AVX-512 kernel of CKernels/sgemm_small.c, weight rows split across the threads. It beats
        // the packed kernel there (no packing of a few rows) and SkinnyGEMM from 2 rows (4 x 4 register
        // tiles); past 32 rows the packed sgemm wins. Figures: tools/bench/RESULTS.md, "GEMM dispatch".
        if transposeB && !transposeA && m >= 2 && m <= 32 && alpha == 1 && (beta == 0 || beta == 1) && t5_gemm_small_available() != 0 {
            Parallel.forEachSlice(n, granule: 16, cost: m * n * k) { columns in
                _ = t5_sgemm_small(
                    Int64(m), Int64(columns.lowerBound), Int64(columns.upperBound), Int64(k), a, Int64(lda), b, Int64(ldb),
                    c, Int64(ldc), beta == 1 ? 1 : 0)
            }
            return
        }
        // Skinny products against a weight stored [out, in] (decode steps of 1-4 rows, 1 on AVX-512): a kernel that
        // streams each weight row once for all rows of A, where OpenBLAS 0.3.21's sgemm streams weights far
        // below the memory bandwidth for small m (tools/bench/RESULTS.md, "GEMM dispatch").
        if transposeB && !transposeA && m <= SkinnyGEMM.maxRows && alpha == 1 && (beta == 0 || beta == 1) {
            Parallel.forEachSlice(n, granule: 8, cost: m * n * k) { rows in
                SkinnyGEMM.multiply(m: m, rows: rows, k: k, a, lda: lda, b, ldb: ldb, c, ldc: ldc, accumulate: beta == 1)
            }
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
        // Large products (the encoder, batches, teacher-forced scoring): the same column split and AVX-512
        // kernel as training (`threadedProduct`: CKernels/sgemm.c where the CPU has it, else OpenBLAS).
        if alpha == 1 && (beta == 0 || beta == 1) {
            threadedProduct(
                m: m, n: n, k: k, a, lda: lda, transposeA: transposeA, b, ldb: ldb, transposeB: transposeB,
                c, ldc: ldc, accumulate: beta == 1)
            return
        }
        // Otherwise: split the columns of C (rows of a transposed B) across our threads, each running
        // single-threaded sgemm on its slice.
        Parallel.forEachSlice(n, granule: 64, cost: m * n * k) { columns in
            let lo = columns.lowerBound
            let bSlice = transposeB ? b + lo * ldb : b + lo
            cblas_sgemm(
                CblasRowMajor,
                transposeA ? CblasTrans : CblasNoTrans,
                transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(columns.count), Int32(k),
                alpha, a, Int32(lda), bSlice, Int32(ldb),
                beta, c + lo, Int32(ldc)
            )
        }
    }

    /// OpenBLAS runs on one thread: `Parallel` owns the cores.
    private static let blasConfigured: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    @inline(__always)
    static func configureBLAS() {
        _ = blasConfigured
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
}

extension GEMM {
    /// `Y (rows, out) (+)= X (rows, in) · Wᵀ` for a weight in any precision.
    ///
    /// fp32 goes to `linear(_:weight:)`. bf16 / int8 with up to 16 rows (decode steps, batches, beams) run
    /// the C kernels, which widen the weights in registers so only the narrow bytes cross the memory bus:
    /// one row through kernels.c, 2-16 rows through the 4 x 4 tiles of sgemm_small.c (faster than widening
    /// the weights first). With more rows (prefill) blocks of 64 weight rows are widened into a scratch and
    /// multiplied by the AVX-512 sgemm (faster than OpenBLAS), which beats the tiles past 16 rows, where the
    /// widening is shared by enough rows. Figures: tools/bench/RESULTS.md, "GEMM dispatch".
    static func linear(
        _ x: UnsafePointer<Float>, rows: Int, weight: WeightMatrix,
        into y: UnsafeMutablePointer<Float>, accumulate: Bool = false
    ) {
        let k = weight.cols, n = weight.rows
        if case let .f32(t) = weight.storage {
            if let packed = weight.packed {
                // Packed once at load (the encoder's weights): C's columns split across the threads in multiples
                // of 64 (whole panels). Every row count goes here: at 32 rows (a 32-token prefill) this beats
                // the unpacked kernel too (tools/bench/RESULTS.md, "GEMM dispatch").
                Parallel.forEachSlice(n, granule: 64, cost: rows * n * k) { columns in
                    let lo = columns.lowerBound, hi = columns.upperBound
                    let done = t5_sgemm_prepacked(
                        Int64(rows), Int64(lo), Int64(hi), Int64(n), Int64(k), x, Int64(k), packed.pointer,
                        y, Int64(n), accumulate ? 1 : 0)
                    if done == 0 {
                        // No packing scratch on this thread (out of memory): the unpacked weight still works.
                        productOnThisThread(
                            m: rows, n: hi - lo, k: k, x, lda: k, transposeA: false, t.pointer + lo * k, ldb: k,
                            transposeB: true, y + lo, ldc: n, accumulate: accumulate)
                    }
                }
                return
            }
            linear(x, rows: rows, inFeatures: k, weight: t.pointer, outFeatures: n, into: y, accumulate: accumulate)
            return
        }
        guard rows > 0, n > 0 else { return }
        if rows <= 16 {
            Parallel.forEachSlice(n, granule: 8, cost: rows * n * k / 2) { columns in
                let lo = columns.lowerBound, hi = columns.upperBound
                let acc: Int32 = accumulate ? 1 : 0
                switch weight.storage {
                case let .bf16(w):
                    if rows >= 2 && t5_bf16_gemm_small(w, Int64(k), Int64(lo), Int64(hi), Int64(k), x, Int64(k), Int64(rows), y, Int64(n), acc) != 0 { return }
                    t5_bf16_gemm(w, Int64(k), Int64(lo), Int64(hi), Int64(k), x, Int64(k), Int64(rows), y, Int64(n), acc)
                case let .int8(w, scales):
                    if rows >= 2 && t5_int8_gemm_small(w, scales.pointer, Int64(k), Int64(lo), Int64(hi), Int64(k), x, Int64(k), Int64(rows), y, Int64(n), acc) != 0 { return }
                    t5_int8_gemm(w, scales.pointer, Int64(k), Int64(lo), Int64(hi), Int64(k), x, Int64(k), Int64(rows), y, Int64(n), acc)
                case .f32:
                    break
                }
            }
            return
        }
        configureBLAS()
        let block = 64
        let blocks = (n + block - 1) / block
        Parallel.forEachSlice(blocks, cost: rows * n * k) { blockRange in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: block * k)
            defer { scratch.deallocate() }
            for b in blockRange {
                let lo = b * block, hi = min(n, lo + block)
                switch weight.storage {
                case let .bf16(w): t5_bf16_to_f32_rows(w, Int64(k), Int64(lo), Int64(hi), Int64(k), scratch)
                case let .int8(w, scales): t5_int8_to_f32_rows(w, scales.pointer, Int64(k), Int64(lo), Int64(hi), Int64(k), scratch)
                case .f32: break
                }
                productOnThisThread(
                    m: rows, n: hi - lo, k: k, x, lda: k, transposeA: false, scratch, ldb: k, transposeB: true,
                    y + lo, ldc: n, accumulate: accumulate)
            }
        }
    }
}

extension GEMM {
    /// Backward of `linear` (Y = X · Wᵀ, W stored `[out, in]`), both results accumulated:
    ///
    ///     dX (rows, in)      += dY (rows, out) · W (out, in)
    ///     dWeight (out, in)  += dYᵀ · X                         (skipped when nil: a frozen weight)
    ///
    /// The two products have the same size (rows·in·out multiply-adds) and share no output, so on several
    /// threads they run side by side, each whole or column-split over its half of the threads, instead of
    /// one after the other each split across all threads: every sgemm keeps more columns and the step
    /// needs one hand-off to the workers instead of two.
    static func linearBackward(
        _ dY: UnsafePointer<Float>, rows: Int, outFeatures: Int,
        x: UnsafePointer<Float>, inFeatures: Int, weight: UnsafePointer<Float>,
        dX: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?
    ) {
        let parts = Parallel.chunks(2 * ((inFeatures + 63) / 64), cost: 2 * rows * inFeatures * outFeatures)
        guard let dWeight, parts >= 2, rows > 0, inFeatures > 0, outFeatures > 0 else {
            // One after the other, each split across the threads (one thread, a frozen weight, or tiny).
            threadedProduct(
                m: rows, n: inFeatures, k: outFeatures, dY, lda: outFeatures, transposeA: false,
                weight, ldb: inFeatures, transposeB: false, dX, ldc: inFeatures, accumulate: true)
            if let dWeight {
                threadedProduct(
                    m: outFeatures, n: inFeatures, k: rows, dY, lda: outFeatures, transposeA: true,
                    x, ldb: inFeatures, transposeB: false, dWeight, ldc: inFeatures, accumulate: true)
            }
            return
        }
        // Parts [0, inputParts) take column slices of dX, the others column slices of dWeight.
        let inputParts = parts / 2, weightParts = parts - inputParts
        Parallel.run(parts) { p in
            if p < inputParts {
                let columns = Parallel.slice(p, of: inputParts, count: inFeatures, granule: 64)
                guard !columns.isEmpty else { return }
                // dX (rows, in) += dY (rows, out) · W (out, in)
                productOnThisThread(
                    m: rows, n: columns.count, k: outFeatures, dY, lda: outFeatures, transposeA: false,
                    weight + columns.lowerBound, ldb: inFeatures, dX + columns.lowerBound, ldc: inFeatures, accumulate: true)
            } else {
                let columns = Parallel.slice(p - inputParts, of: weightParts, count: inFeatures, granule: 64)
                guard !columns.isEmpty else { return }
                // dWeight (out, in) += dYᵀ (out, rows) · X (rows, in)
                productOnThisThread(
                    m: outFeatures, n: columns.count, k: rows, dY, lda: outFeatures, transposeA: true,
                    x + columns.lowerBound, ldb: inFeatures, dWeight + columns.lowerBound, ldc: inFeatures, accumulate: true)
            }
        }
    }

    /// `C (m, n) (+)= op(A) · op(B)` on the calling thread: the AVX-512 kernel (`t5_sgemm`) where it runs,
    /// single-threaded sgemm otherwise. m, n, k > 0.
    @inline(__always)
    static func productOnThisThread(
        m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int, transposeA: Bool,
        _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
        _ c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool
    ) {
        let done = t5_sgemm(
            Int64(m), Int64(n), Int64(k), a, Int64(lda), transposeA ? 1 : 0, b, Int64(ldb), transposeB ? 1 : 0,
            c, Int64(ldc), accumulate ? 1 : 0)
        if done != 0 { return }
        configureBLAS()
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
    }
}

extension GEMM {
    /// `C (m, n) (+)= op(A) · op(B)` for every large product (training, the encoder, prefills): columns of C
    /// split across the threads, each slice through `productOnThisThread`, i.e. the AVX-512 kernel of
    /// CKernels/sgemm.c (`t5_sgemm`) where the CPU has it and single-threaded sgemm otherwise.
    ///
    /// OpenBLAS may run its AVX2 kernels on an AVX-512 machine (an old CPU table, or OPENBLAS_CORETYPE),
    /// about half t5_sgemm's speed there (tools/bench/RESULTS.md, "GEMM dispatch").
    static func threadedProduct(
        m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int, transposeA: Bool,
        _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        _ c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool
    ) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        Parallel.forEachSlice(n, granule: 64, cost: m * n * k) { columns in
            productOnThisThread(
                m: m, n: columns.count, k: k, a, lda: lda, transposeA: transposeA,
                transposeB ? b + columns.lowerBound * ldb : b + columns.lowerBound, ldb: ldb, transposeB: transposeB,
                c + columns.lowerBound, ldc: ldc, accumulate: accumulate)
        }
    }
}
