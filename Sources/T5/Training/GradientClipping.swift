import Foundation

/// Gradient clipping by global norm, as `torch.nn.utils.clip_grad_norm_` does it.
public enum GradientClipping {
    /// The L2 norm of all gradients together: √(Σ‖g‖²), each tensor's norm taken first (fp64 here).
    ///
    /// Tensors are spread over the threads and each tensor's Σg² runs in eight fp64 accumulators (one
    /// accumulator was a 4-cycle add chain per element, serial: tools/bench/RESULTS.md, "Kernel choices");
    /// the tensors' sums are then added in the given order, so the result does not depend on the thread count.
    public static func globalNorm(_ gradients: [Tensor]) -> Double {
        var sums = [Double](repeating: 0, count: gradients.count)
        sums.withUnsafeMutableBufferPointer { sums in
            let out = UncheckedSendable(value: sums.baseAddress.unsafelyUnwrapped)
            Parallel.run(gradients.count) { t in
                out.value[t] = sumOfSquares(gradients[t].pointer, gradients[t].count)
            }
        }
        return sums.reduce(0, +).squareRoot()
    }

    /// Σ x[i]² in fp64, with eight independent accumulators combined pairwise at the end.
    static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        var a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, a4 = 0.0, a5 = 0.0, a6 = 0.0, a7 = 0.0
        var i = 0
        while i + 8 <= n {
            let x0 = Double(x[i]), x1 = Double(x[i + 1]), x2 = Double(x[i + 2]), x3 = Double(x[i + 3])
            let x4 = Double(x[i + 4]), x5 = Double(x[i + 5]), x6 = Double(x[i + 6]), x7 = Double(x[i + 7])
            a0 += x0 * x0; a1 += x1 * x1; a2 += x2 * x2; a3 += x3 * x3
            a4 += x4 * x4; a5 += x5 * x5; a6 += x6 * x6; a7 += x7 * x7
            i += 8
        }
        while i < n { a0 += Double(x[i]) * Double(x[i]); i += 1 }
        return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
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
        // One work item per tensor, on the worker threads (each touches only its tensor).
        Parallel.run(gradients.count) { t in
            Vector.scale(gradients[t].pointer, by: coefficient, gradients[t].count)
        }
        return norm
    }
}
