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
        if queries == 1 {
            decodeStep(
                q: q, keys: keys, ldk: ldk, values: values, ldv: ldv, keyLength: keyLength, headDim: headDim,
                position: firstPosition, causal: causal, bias: bias, scores: scores, out: out)
            return
        }
        // scores (queries, L) = bias, then += Q · Kᵀ: the product adds to the bias as it stores (the same
        // single rounding of dot + bias as adding afterwards, without another pass over the scores).
        for i in 0..<queries {
            let row = scores + i * keyLength
            if case let .relative(center, maxDistance) = bias {
                // Row i reads center[clamp(j − position)]: constant left of position − maxDistance, a
                // contiguous run of the centred table around the position, constant right of it.
                let position = firstPosition + i
                let lo = min(max(position - maxDistance, 0), keyLength)
                let hi = min(max(position + maxDistance + 1, lo), keyLength)
                row.update(repeating: center[-maxDistance], count: lo)
                (row + lo).update(from: center + (lo - position), count: hi - lo)
                (row + hi).update(repeating: center[maxDistance], count: keyLength - hi)
            } else {
                row.update(repeating: 0, count: keyLength)
            }
        }
        // Called from the workers of a parallel loop over (row, head), so the skinny kernel runs here
        // directly rather than through GEMM's own thread split.
        if queries <= SkinnyGEMM.maxRows {
            SkinnyGEMM.multiply(m: queries, rows: 0..<keyLength, k: headDim, q, lda: ldq, keys, ldb: ldk, scores, ldc: keyLength, accumulate: true)
        } else {
            GEMM.multiply(
                m: queries, n: keyLength, k: headDim,
                q, lda: ldq, keys, ldb: ldk, transposeB: true,
                scores, ldc: keyLength, beta: 1)
        }
        for i in 0..<queries {
            let row = scores + i * keyLength
            let position = firstPosition + i
            let visible = causal ? min(position + 1, keyLength) : keyLength
            Softmax.forwardInPlace(row, visible)
            if visible < keyLength { (row + visible).update(repeating: 0, count: keyLength - visible) }
        }
        // out (queries, K) = P (queries, L) · V (L, K)
        GEMM.multiply(
            m: queries, n: headDim, k: keyLength,
            scores, lda: keyLength, values, ldb: ldv,
            out, ldc: ldo)
    }

    /// One query (a decode step): the same formula as `forward` with plain SIMD loops, since two BLAS calls
    /// per (row, head, layer) on a (1 × L) problem cost more in call overhead than in arithmetic.
    ///
    /// Scores take four keys per pass (four independent accumulators, one horizontal sum each at the end);
    /// the weighted sum of values keeps 64 output dimensions in registers across every key, so `out` is
    /// written once instead of once per key.
    @inline(__always)
    static func decodeStep(
        q: UnsafePointer<Float>, keys: UnsafePointer<Float>, ldk: Int, values: UnsafePointer<Float>, ldv: Int,
        keyLength: Int, headDim: Int, position: Int, causal: Bool, bias: Bias,
        scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>
    ) {
        typealias V = Vector.V
        let w = Vector.width
        let visible = causal ? min(position + 1, keyLength) : keyLength
        let dVector = headDim / w * w
        var j = 0
        while j + 4 <= visible {
            let k0 = keys + j * ldk, k1 = k0 + ldk, k2 = k1 + ldk, k3 = k2 + ldk
            var s0 = V(), s1 = V(), s2 = V(), s3 = V()
            var i = 0
            while i < dVector {
                let qv = Vector.load(q + i)
                s0 = s0.addingProduct(qv, Vector.load(k0 + i))
                s1 = s1.addingProduct(qv, Vector.load(k1 + i))
                s2 = s2.addingProduct(qv, Vector.load(k2 + i))
                s3 = s3.addingProduct(qv, Vector.load(k3 + i))
                i += w
            }
            var t0 = Vector.sum(s0), t1 = Vector.sum(s1), t2 = Vector.sum(s2), t3 = Vector.sum(s3)
            while i < headDim {
                t0 += q[i] * k0[i]; t1 += q[i] * k1[i]; t2 += q[i] * k2[i]; t3 += q[i] * k3[i]
                i += 1
            }
            scores[j] = t0; scores[j + 1] = t1; scores[j + 2] = t2; scores[j + 3] = t3
            j += 4
        }
        while j < visible { scores[j] = Vector.dot(q, keys + j * ldk, headDim); j += 1 }
        if case let .relative(center, maxDistance) = bias {
            for j in 0..<visible { scores[j] += center[min(max(j - position, -maxDistance), maxDistance)] }
        }
        Softmax.forwardInPlace(scores, visible)
        var i = 0
        while i + 4 * w <= headDim {
            var o0 = V(), o1 = V(), o2 = V(), o3 = V()
            for j in 0..<visible {
                let p = V(repeating: scores[j]), v = values + j * ldv + i
                o0 = o0.addingProduct(p, Vector.load(v))
                o1 = o1.addingProduct(p, Vector.load(v + w))
                o2 = o2.addingProduct(p, Vector.load(v + 2 * w))
                o3 = o3.addingProduct(p, Vector.load(v + 3 * w))
            }
            Vector.store(o0, out + i); Vector.store(o1, out + i + w)
            Vector.store(o2, out + i + 2 * w); Vector.store(o3, out + i + 3 * w)
            i += 4 * w
        }
        if i < headDim {
            (out + i).update(repeating: 0, count: headDim - i)
            for j in 0..<visible { Vector.addScaled(values + j * ldv + i, scores[j], into: out + i, headDim - i) }
        }
    }
}

extension Attention {
    /// The training forward of one sequence and head: `forward` without a cache, keeping what `backward` needs.
    ///
    /// - probabilities: (queries, L) output, kept for the backward: softmax(Q·Kᵀ + bias + mask), 0 where masked.
    /// - dropoutMask: (queries, L) values 0 or 1/(1 − p), applied to the probabilities before `· V`
    ///   (eager_attention_forward's `nn.functional.dropout(attn_weights, p=dropout, training=...)`,
    ///   modeling_t5.py:169); nil when there is no dropout.
    /// - dropped: (queries, L) scratch for the masked probabilities; unused without a mask.
    ///
    /// The products run on the calling thread (`GEMM.productOnThisThread`): the training step runs the heads
    /// of a layer on the worker threads, one (sequence, head) pair per call.
    static func trainingForward(
        q: UnsafePointer<Float>, ldq: Int,
        keys: UnsafePointer<Float>, ldk: Int,
        values: UnsafePointer<Float>, ldv: Int,
        queries: Int, keyLength: Int, headDim: Int,
        causal: Bool, bias: Bias,
        probabilities: UnsafeMutablePointer<Float>,
        dropoutMask: UnsafePointer<Float>?, dropped: UnsafeMutablePointer<Float>,
        out: UnsafeMutablePointer<Float>, ldo: Int
    ) {
        let p = probabilities  // (queries, L)
        // p = Q · Kᵀ (no 1/sqrt(d_kv): T5Attention.scaling = 1.0)
        GEMM.productOnThisThread(
            m: queries, n: keyLength, k: headDim,
            q, lda: ldq, transposeA: false, keys, ldb: ldk, transposeB: true,
            p, ldc: keyLength, accumulate: false)
        for i in 0..<queries {
            let row = p + i * keyLength
            let visible = causal ? min(i + 1, keyLength) : keyLength
            if case let .relative(center, maxDistance) = bias {
                for j in 0..<visible { row[j] += center[min(max(j - i, -maxDistance), maxDistance)] }
            }
            Softmax.forwardInPlace(row, visible)
            if visible < keyLength { (row + visible).update(repeating: 0, count: keyLength - visible) }
        }
        var weights = UnsafePointer(p)
        if let dropoutMask {
            dropped.update(from: p, count: queries * keyLength)
            Vector.multiply(dropped, by: dropoutMask, queries * keyLength)
            weights = UnsafePointer(dropped)
        }
        // out (queries, K) = P̃ (queries, L) · V (L, K)
        GEMM.productOnThisThread(
            m: queries, n: headDim, k: keyLength,
            weights, lda: keyLength, transposeA: false, values, ldb: ldv,
            out, ldc: ldo, accumulate: false)
    }

    /// Backward of `trainingForward`, given dOut (queries, K). With P̃ = P ⊙ M (M the dropout mask, or 1):
    ///
    ///     dV += P̃ᵀ · dOut
    ///     dP  = (dOut · Vᵀ) ⊙ M
    ///     dS  = P ⊙ (dP − rowsum(P ⊙ dP))           softmax backward; S = Q·Kᵀ + bias + mask
    ///     dQ += dS · K,   dK += dSᵀ · Q
    ///     dBias[clamp(j − i)] += dS[i, j]           every score reads the bias of its clamped distance
    ///
    /// Masked scores have P = 0, hence dS = 0: no gradient crosses the causal or padding mask.
    /// dQ, dKeys, dValues have the layouts (and row strides) of q, keys, values and accumulate.
    /// dBias is this head's gradient row centred like `RelativePositionBias.center` (nil: none, or frozen).
    /// scratch: 2 · queries · L floats. The products run on the calling thread, as in `trainingForward`.
    static func backward(
        dOut: UnsafePointer<Float>, ldo: Int,
        q: UnsafePointer<Float>, ldq: Int,
        keys: UnsafePointer<Float>, ldk: Int,
        values: UnsafePointer<Float>, ldv: Int,
        queries: Int, keyLength: Int, headDim: Int,
        causal: Bool, bias: Bias,
        probabilities: UnsafePointer<Float>, dropoutMask: UnsafePointer<Float>?,
        dQ: UnsafeMutablePointer<Float>, dKeys: UnsafeMutablePointer<Float>, dValues: UnsafeMutablePointer<Float>,
        dBias: UnsafeMutablePointer<Float>?,
        scratch: UnsafeMutablePointer<Float>
    ) {
        let n = queries * keyLength
        let dS = scratch           // (queries, L): dP, then dS in place
        var weights = probabilities  // P̃ (queries, L)
        if let dropoutMask {
            let dropped = scratch + n
            dropped.update(from: probabilities, count: n)
            Vector.multiply(dropped, by: dropoutMask, n)
            weights = UnsafePointer(dropped)
        }
        // dV (L, K) += P̃ᵀ · dOut
        GEMM.productOnThisThread(
            m: keyLength, n: headDim, k: queries,
            weights, lda: keyLength, transposeA: true, dOut, ldb: ldo,
            dValues, ldc: ldv, accumulate: true)
        // dP (queries, L) = dOut · Vᵀ
        GEMM.productOnThisThread(
            m: queries, n: keyLength, k: headDim,
            dOut, lda: ldo, transposeA: false, values, ldb: ldv, transposeB: true,
            dS, ldc: keyLength, accumulate: false)
        if let dropoutMask { Vector.multiply(dS, by: dropoutMask, n) }
        for i in 0..<queries {
            let row = dS + i * keyLength
            let visible = causal ? min(i + 1, keyLength) : keyLength
            Softmax.backwardInPlace(probabilities: probabilities + i * keyLength, row, visible)
            if visible < keyLength { (row + visible).update(repeating: 0, count: keyLength - visible) }
            if let dBias, case let .relative(_, maxDistance) = bias {
                for j in 0..<visible { dBias[min(max(j - i, -maxDistance), maxDistance)] += row[j] }
            }
        }
        // dQ (queries, K) += dS · K
        GEMM.productOnThisThread(
            m: queries, n: headDim, k: keyLength,
            dS, lda: keyLength, transposeA: false, keys, ldb: ldk,
            dQ, ldc: ldq, accumulate: true)
        // dK (L, K) += dSᵀ · Q
        GEMM.productOnThisThread(
            m: keyLength, n: headDim, k: queries,
            dS, lda: keyLength, transposeA: true, q, ldb: ldq,
            dKeys, ldc: ldk, accumulate: true)
    }
}
