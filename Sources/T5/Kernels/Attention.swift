/// Scaled-dot-product attention as T5 computes it (eager_attention_forward with scaling = 1.0):
///
///     out = softmax(Q·Kᵀ + bias + mask) · V
///
/// with **no** 1/sqrt(d_kv) factor (T5 folds it into the initialisation of the query weights).
/// One call handles one sequence and one head; the projections before and after are whole-step GEMMs.
enum Attention {
    /// Where the bias of a score comes from.
    enum Bias {
        /// Cross-attention: no position bias.
        case none
        /// Self-attention: a relative position bias row for this head (see `RelativePositionBias.center`),
        /// and the bucket distance clamp.
        case relative(UnsafePointer<Float>, maxDistance: Int)
    }

    /// Attention of `queries` query rows against key rows `0..<keyCount(i)` for query i.
    ///
    /// - q: (queries, K) with row stride `ldq`; keys, values: (L, K) with row strides `ldk`, `ldv`.
    /// - Query i sits at absolute position `firstPosition + i`; when `causal`, it sees keys `0...firstPosition+i`,
    ///   otherwise keys `0..<keyLength` (keys past a padded source's length are masked out by the caller
    ///   passing the true length, which matches transformers' additive finfo.min mask: those weights are 0).
    /// - scores: scratch of at least `queries · keyLength` floats.
    /// - out: (queries, K) with row stride `ldo`.
    static func forward(
        q: UnsafePointer<Float>, ldq: Int,
        keys: UnsafePointer<Float>, ldk: Int,
        values: UnsafePointer<Float>, ldv: Int,
        queries: Int, keyLength: Int, headDim: Int,
        firstPosition: Int, causal: Bool, bias: Bias,
        scores: UnsafeMutablePointer<Float>,
        out: UnsafeMutablePointer<Float>, ldo: Int
    ) {
        // scores (queries, L) = Q · Kᵀ
        GEMM.multiply(
            m: queries, n: keyLength, k: headDim,
            q, lda: ldq, keys, ldb: ldk, transposeB: true,
            scores, ldc: keyLength)
        for i in 0..<queries {
            let row = scores + i * keyLength
            let position = firstPosition + i
            let visible = causal ? min(position + 1, keyLength) : keyLength
            if case let .relative(center, maxDistance) = bias {
                for j in 0..<visible {
                    let d = min(max(j - position, -maxDistance), maxDistance)
                    row[j] += center[d]
                }
            }
            Softmax.forwardInPlace(row, visible)
            if visible < keyLength { (row + visible).update(repeating: 0, count: keyLength - visible) }
        }
        // out (queries, K) = P (queries, L) · V (L, K)
        GEMM.multiply(
            m: queries, n: headDim, k: keyLength,
            scores, lda: keyLength, values, ldb: ldv,
            out, ldc: ldo)
    }
}
