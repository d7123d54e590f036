import Foundation

/// Word-level distillation's soft term over (rows, V) logits: per row, with temperature τ,
///
///     p = softmax(t / τ)   (the teacher's distribution)      log q = log_softmax(s / τ)   (the student's)
///     KL(p ‖ q) = Σ_j p_j · (log p_j − log q_j)
///
/// summed over the whole vocabulary, as torch's `KLDivLoss()(log_softmax(s / τ), softmax(t / τ))` computes
/// it in Shleifer & Rush's distillation.py (`calc_ce_loss`, reduction "batchmean" over the selected rows).
/// A zero teacher probability contributes 0 (torch's xlogy). The derivative, for the backward:
///
///     ∂KL/∂s_j = (q_j − p_j) / τ
enum KLDivergence {
    /// log Σ_j exp(x_j · inverseT), without writing the scaled row (τ > 0 keeps the maximum where it is).
    static func scaledLogSumExp(_ x: UnsafePointer<Float>, _ n: Int, inverseT: Float) -> Float {
        let m = Vector.max(x, n) * inverseT
        if m == -.infinity { return m }
        let scale = Vector.V(repeating: inverseT), shift = Vector.V(repeating: m)
        var a0 = Vector.V(), a1 = Vector.V()
        var i = 0
        while i + 2 * Vector.width <= n {
            a0 += Vector.exp(Vector.load(x + i) * scale - shift)
            a1 += Vector.exp(Vector.load(x + i + Vector.width) * scale - shift)
            i += 2 * Vector.width
        }
        var sum = Vector.sum(a0 + a1)
        while i < n { sum += Foundation.exp(x[i] * inverseT - m); i += 1 }
        return m + Foundation.log(sum)
    }

    /// Sums KL(softmax(teacher / τ) ‖ softmax(student / τ)) over `rows` (in Double, in row order whatever the
    /// thread split). Overwrites `teacher` with log p = log_softmax(teacher / τ), the form `backward` reads.
    static func forward(
        student: UnsafePointer<Float>, teacher: UnsafeMutablePointer<Float>, rows: Int, vocab: Int, temperature: Float
    ) -> Double {
        let inverseT = 1 / temperature
        var losses = [Double](repeating: 0, count: rows)
        losses.withUnsafeMutableBufferPointer { losses in
            Parallel.forEachSlice(rows, cost: 6 * rows * vocab) { slice in
                for r in slice {
                    let s = student + r * vocab, logP = teacher + r * vocab
                    let teacherLSE = scaledLogSumExp(logP, vocab, inverseT: inverseT)
                    let studentLSE = scaledLogSumExp(s, vocab, inverseT: inverseT)
                    // log p_j = t_j/τ − lse_t (kept for the backward); Σ p_j·(log p_j − (s_j/τ − lse_s)), 16 lanes
                    // at a time. A teacher probability that underflows to 0 adds 0 (its log stays finite).
                    let vScale = Vector.V(repeating: inverseT)
                    let vTeacher = Vector.V(repeating: teacherLSE), vStudent = Vector.V(repeating: studentLSE)
                    var acc = Vector.V()
                    var j = 0
                    while j + Vector.width <= vocab {
                        let lp = Vector.load(logP + j) * vScale - vTeacher
                        Vector.store(lp, logP + j)
                        acc += Vector.exp(lp) * (lp - (Vector.load(s + j) * vScale - vStudent))
                        j += Vector.width
                    }
                    var sum = Double(Vector.sum(acc))
                    while j < vocab {
                        let lp = logP[j] * inverseT - teacherLSE
                        logP[j] = lp
                        sum += Double(Foundation.exp(lp)) * Double(lp - (s[j] * inverseT - studentLSE))
                        j += 1
                    }
                    losses[r] = sum
                }
            }
        }
        return losses.reduce(0, +)
    }

    /// logP ← scale · ∂(Σ row KLs)/∂student = scale · (softmax(student / τ) − exp(logP)) / τ, in place of the
    /// teacher's log-probabilities `forward` left there (so no (rows, V) buffer is added). Rows split across threads.
    static func backward(
        student: UnsafePointer<Float>, logP: UnsafeMutablePointer<Float>, rows: Int, vocab: Int, temperature: Float,
        scale: Float
    ) {
        let inverseT = 1 / temperature, factor = scale * inverseT
        Parallel.forEachSlice(rows, cost: 4 * rows * vocab) { slice in
            for r in slice {
                let s = student + r * vocab, g = logP + r * vocab
                let lse = scaledLogSumExp(s, vocab, inverseT: inverseT)
                let vScale = Vector.V(repeating: inverseT), vLSE = Vector.V(repeating: lse), vFactor = Vector.V(repeating: factor)
                var j = 0
                while j + Vector.width <= vocab {
                    let q = Vector.exp(Vector.load(s + j) * vScale - vLSE)
                    let p = Vector.exp(Vector.load(g + j))
                    Vector.store(vFactor * (q - p), g + j)
                    j += Vector.width
                }
                while j < vocab { g[j] = factor * (expf(s[j] * inverseT - lse) - expf(g[j])); j += 1 }
            }
        }
    }
}
