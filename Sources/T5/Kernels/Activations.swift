import Foundation

/// The feed-forward activations transformers' ACT2FN offers for T5's `feed_forward_proj`.
///
/// Formulas are those of transformers/activations.py; the tanh-based GELUs and the sigmoid-based ones run
/// 16 lanes at a time through `Vector.exp`, the erf GELU through libm's erff.
enum Activations {
    typealias V = Vector.V

    /// x[0..<n] ← act(x) in place.
    static func forward(_ kind: Activation, _ x: UnsafeMutablePointer<Float>, _ n: Int) {
        switch kind {
        case .relu: map(x, n, vector: { pointwiseMax($0, V()) }, scalar: { max($0, 0) })
        case .relu2: map(x, n, vector: { let r = pointwiseMax($0, V()); return r * r }, scalar: { let r = max($0, 0); return r * r })
        case .relu6: map(x, n, vector: { $0.clamped(lowerBound: V(), upperBound: V(repeating: 6)) }, scalar: { min(max($0, 0), 6) })
        case .leakyRelu: map(x, n, vector: { v in var r = v; r.replace(with: v * 0.01, where: v .< 0); return r }, scalar: { $0 < 0 ? 0.01 * $0 : $0 })
        case .gelu, .geluPython:
            // GELUActivation: 0.5·x·(1 + erf(x/√2)), the exact GELU.
            for i in 0..<n { let v = x[i]; x[i] = 0.5 * v * (1 + erff(v * 0.70710678118654752)) }
        case .gelu10:
            // ClippedGELUActivation(-10, 10): the exact GELU clipped to [-10, 10].
            for i in 0..<n { let v = x[i]; x[i] = min(max(0.5 * v * (1 + erff(v * 0.70710678118654752)), -10), 10) }
        case .geluNew, .geluPytorchTanh, .geluPythonTanh, .geluAccurate:
            // NewGELUActivation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
            map(x, n, vector: { v in V(repeating: 0.5) * v * (1 + tanhV(0.7978845608028654 * (v + 0.044715 * v * v * v))) },
                scalar: { v in 0.5 * v * (1 + tanhf(0.7978845608028654 * (v + 0.044715 * v * v * v))) })
        case .geluFast:
            // FastGELUActivation: 0.5·x·(1 + tanh(x·0.7978845608·(1 + 0.044715·x²))).
            map(x, n, vector: { v in V(repeating: 0.5) * v * (1 + tanhV(v * 0.7978845608 * (1 + 0.044715 * v * v))) },
                scalar: { v in 0.5 * v * (1 + tanhf(v * 0.7978845608 * (1 + 0.044715 * v * v))) })
        case .quickGelu:
            // QuickGELUActivation: x·σ(1.702·x).
            map(x, n, vector: { v in v * sigmoidV(1.702 * v) }, scalar: { v in v / (1 + expf(-1.702 * v)) })
        case .silu, .swish:
            map(x, n, vector: { v in v * sigmoidV(v) }, scalar: { v in v / (1 + expf(-v)) })
        case .sigmoid:
            map(x, n, vector: { v in sigmoidV(v) }, scalar: { v in 1 / (1 + expf(-v)) })
        case .tanh:
            map(x, n, vector: { v in tanhV(v) }, scalar: { v in tanhf(v) })
        case .mish:
            // MishActivation: x·tanh(softplus(x)).
            for i in 0..<n { let v = x[i]; x[i] = v * tanhf(log1pf(expf(v))) }
        case .hardswish:
            // nn.Hardswish: x·relu6(x + 3)/6.
            map(x, n, vector: { v in v * (v + 3).clamped(lowerBound: V(), upperBound: V(repeating: 6)) / 6 },
                scalar: { v in v * min(max(v + 3, 0), 6) / 6 })
        case .laplace:
            // LaplaceActivation: 0.5·(1 + erf((x − μ) / (σ·√2))) with μ = 0.707107, σ = 0.282095.
            for i in 0..<n { x[i] = 0.5 * (1 + erff((x[i] - 0.707107) / (0.282095 * 1.4142135623730951))) }
        case .sqrtsoftplus:
            // SqrtSoftplusActivation: √softplus(x).
            for i in 0..<n { x[i] = log1pf(expf(x[i])).squareRoot() }
        case .linear:
            break
        }
    }

    /// Gated feed-forward (T5 v1.1): gate[i] ← act(gate[i]) · linear[i].
    static func gatedForward(_ kind: Activation, gate: UnsafeMutablePointer<Float>, linear: UnsafePointer<Float>, _ n: Int) {
        forward(kind, gate, n)
        Vector.multiply(gate, by: linear, n)
    }

    @inline(__always)
    private static func map(
        _ x: UnsafeMutablePointer<Float>, _ n: Int,
        vector: (V) -> V, scalar: (Float) -> Float
    ) {
        var i = 0
        while i + Vector.width <= n {
            Vector.store(vector(Vector.load(x + i)), x + i)
            i += Vector.width
        }
        while i < n { x[i] = scalar(x[i]); i += 1 }
    }

    /// σ(v) = 1 / (1 + e^−v); Vector.exp clamps at 88, so very negative v gives ~0 rather than NaN.
    @inline(__always)
    static func sigmoidV(_ v: V) -> V {
        1 / (1 + Vector.exp(-v))
    }

    /// tanh(v) = 1 − 2 / (e^{2v} + 1): absolute error ~1e-7, all a GELU needs.
    @inline(__always)
    static func tanhV(_ v: V) -> V {
        1 - 2 / (Vector.exp(2 * v) + 1)
    }
}
