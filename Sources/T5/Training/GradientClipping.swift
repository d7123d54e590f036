import Foundation

/// Gradient clipping by global norm, as `torch.nn.utils.clip_grad_norm_` does it.
public enum GradientClipping {
    /// The L2 norm of all gradients together: √(Σ‖g‖²), each tensor's norm taken first (fp64 here).
    public static func globalNorm(_ gradients: [Tensor]) -> Double {
        var total = 0.0
        for g in gradients {
            let p = g.pointer
            var sum = 0.0
            for i in 0..<g.count { sum += Double(p[i]) * Double(p[i]) }
            total += sum
        }
        return total.squareRoot()
    }

    /// Scales every gradient by min(1, maxNorm / (norm + 1e-6)) — torch's `clip_coef` with its
    /// 1e-6 — and returns the norm before clipping. `maxNorm` ≤ 0 means no clipping (the norm is
    /// still returned, for logging). The gradients are visited in the given order, but the result
    /// does not depend on it beyond fp64 rounding of the sum.
    @discardableResult
    public static func clip(_ gradients: [Tensor], maxNorm: Double) -> Double {
        let norm = globalNorm(gradients)
        guard maxNorm > 0 else { return norm }
        let coefficient = Float(maxNorm) / (Float(norm) + 1e-6)
        // torch multiplies by the clamped coefficient unconditionally; a factor of exactly 1 is a no-op.
        guard coefficient < 1 else { return norm }
        for g in gradients {
            let p = g.pointer
            for i in 0..<g.count { p[i] *= coefficient }
        }
        return norm
    }
}
