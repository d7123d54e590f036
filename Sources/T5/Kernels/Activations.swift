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
        case .relu: map(x, n, vector: { Vector.relu($0) }, scalar: { max($0, 0) })
        case .relu2: map(x, n, vector: { let r = Vector.relu($0); return r * r }, scalar: { let r = max($0, 0); return r * r })
        case .relu6: map(x, n, vector: { Vector.clamp($0, V(), V(repeating: 6)) }, scalar: { min(max($0, 0), 6) })
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
            for i in 0..<n { let v = x[i]; x[i] = v * tanhf(softplus(v)) }
        case .hardswish:
            // nn.Hardswish: x·relu6(x + 3)/6.
            map(x, n, vector: { v in v * Vector.clamp(v + 3, V(), V(repeating: 6)) / 6 },
                scalar: { v in v * min(max(v + 3, 0), 6) / 6 })
        case .laplace:
            // LaplaceActivation: 0.5·(1 + erf((x − μ) / (σ·√2))) with μ = 0.707107, σ = 0.282095.
            for i in 0..<n { x[i] = 0.5 * (1 + erff((x[i] - 0.707107) / (0.282095 * 1.4142135623730951))) }
        case .sqrtsoftplus:
            // SqrtSoftplusActivation: √softplus(x).
            for i in 0..<n { x[i] = softplus(x[i]).squareRoot() }
        case .linear:
            break
        }
    }

    /// Gated feed-forward (T5 v1.1): gate[i] ← act(gate[i]) · linear[i].
    static func gatedForward(_ kind: Activation, gate: UnsafeMutablePointer<Float>, linear: UnsafePointer<Float>, _ n: Int) {
        forward(kind, gate, n)
        Vector.multiply(gate, by: linear, n)
    }

    /// torch's softplus: log(1 + eˣ), and x itself above the threshold 20 (where eˣ would overflow).
    @inline(__always)
    static func softplus(_ x: Float) -> Float {
        x > 20 ? x : log1pf(expf(x))
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

extension Activations {
    /// dX[i] += dY[i]·act′(x[i]), where x is the activation's *input* (the forward runs in place, so the
    /// training forward keeps a copy of it).
    ///
    /// Derivatives are those PyTorch's autograd takes of transformers' formulas (see `valueAndDerivative`);
    /// relu and the tanh GELUs (original T5 and v1.1/Flan) run 16 lanes at a time.
    static func backward(_ kind: Activation, x: UnsafePointer<Float>, dY: UnsafePointer<Float>, dX: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        switch kind {
        case .relu:
            // threshold_backward: the gradient passes where x > 0 (0 at x = 0).
            while i + Vector.width <= n {
                var g = Vector.load(dY + i)
                g.replace(with: 0, where: Vector.load(x + i) .<= 0)
                Vector.store(Vector.load(dX + i) + g, dX + i)
                i += Vector.width
            }
        case .geluNew, .geluPytorchTanh, .geluPythonTanh, .geluAccurate:
            while i + Vector.width <= n {
                let (_, d) = tanhGELU(Vector.load(x + i))
                Vector.store(Vector.load(dX + i).addingProduct(Vector.load(dY + i), d), dX + i)
                i += Vector.width
            }
        default:
            break
        }
        while i < n { dX[i] += dY[i] * valueAndDerivative(kind, x[i]).derivative; i += 1 }
    }

    /// Backward of `gatedForward` (T5DenseGatedActDense: act(wi_0·h) ⊙ (wi_1·h)), given the gate's input
    /// `gate` (before the activation) and `linear`:
    ///
    ///     dGate[i]   += dY[i]·act′(gate[i])·linear[i]
    ///     dLinear[i] += dY[i]·act(gate[i])
    static func gatedBackward(
        _ kind: Activation, gate: UnsafePointer<Float>, linear: UnsafePointer<Float>, dY: UnsafePointer<Float>,
        dGate: UnsafeMutablePointer<Float>, dLinear: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        var i = 0
        switch kind {
        case .geluNew, .geluPytorchTanh, .geluPythonTanh, .geluAccurate:
            while i + Vector.width <= n {
                let (v, d) = tanhGELU(Vector.load(gate + i))
                let dy = Vector.load(dY + i)
                Vector.store(Vector.load(dGate + i).addingProduct(dy * d, Vector.load(linear + i)), dGate + i)
                Vector.store(Vector.load(dLinear + i).addingProduct(dy, v), dLinear + i)
                i += Vector.width
            }
        default:
            break
        }
        while i < n {
            let (v, d) = valueAndDerivative(kind, gate[i])
            dGate[i] += dY[i] * d * linear[i]
            dLinear[i] += dY[i] * v
            i += 1
        }
    }

    /// act(x) and act′(x) for one element. With σ(x) = 1/(1 + e^−x), Φ the normal CDF and φ its density:
    ///
    /// - relu: 1 if x > 0 else 0 (torch's threshold_backward). relu2 = relu(x)²: 2·relu(x).
    /// - relu6: 1 if 0 < x < 6 else 0 (hardtanh_backward masks x ≤ 0 and x ≥ 6).
    /// - leaky_relu: 1 if x > 0 else 0.01 (leaky_relu_backward).
    /// - gelu (erf): Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π). gelu_10: that, where −10 ≤ gelu(x) ≤ 10 (clamp_backward).
    /// - tanh GELUs, u = c·(x + 0.044715·x³), t = tanh(u): 0.5·(1 + t) + 0.5·x·(1 − t²)·c·(1 + 3·0.044715·x²).
    /// - quick_gelu x·σ(1.702x): σ(1.702x) + 1.702·x·σ(1.702x)·(1 − σ(1.702x)).
    /// - silu x·σ(x): σ(x)·(1 + x·(1 − σ(x))). sigmoid: σ(x)(1 − σ(x)). tanh: 1 − tanh²(x).
    /// - mish x·tanh(sp(x)), sp = softplus: tanh(sp) + x·(1 − tanh²(sp))·σ(x).
    /// - hardswish: 0 for x < −3, x/3 + 1/2 for −3 ≤ x ≤ 3, 1 above (hardswish_backward).
    /// - laplace 0.5·(1 + erf(z)), z = (x − μ)/(σ·√2): e^(−z²)/(σ·√(2π)).
    /// - sqrtsoftplus √sp(x): σ(x)/(2·√sp(x)) (0 where sp underflows to 0). softplus is x above 20, as in torch.
    static func valueAndDerivative(_ kind: Activation, _ x: Float) -> (value: Float, derivative: Float) {
        switch kind {
        case .relu:
            return (max(x, 0), x > 0 ? 1 : 0)
        case .relu2:
            let r = max(x, 0)
            return (r * r, 2 * r)
        case .relu6:
            return (min(max(x, 0), 6), x > 0 && x < 6 ? 1 : 0)
        case .leakyRelu:
            return (x < 0 ? 0.01 * x : x, x > 0 ? 1 : 0.01)
        case .gelu, .geluPython:
            return exactGELU(x)
        case .gelu10:
            let (v, d) = exactGELU(x)
            return (min(max(v, -10), 10), v >= -10 && v <= 10 ? d : 0)
        case .geluNew, .geluPytorchTanh, .geluPythonTanh, .geluAccurate:
            return tanhGELU(x, c: 0.7978845608028654)
        case .geluFast:
            return tanhGELU(x, c: 0.7978845608)
        case .quickGelu:
            let s = 1 / (1 + expf(-1.702 * x))
            return (x * s, s + 1.702 * x * s * (1 - s))
        case .silu, .swish:
            let s = 1 / (1 + expf(-x))
            return (x * s, s * (1 + x * (1 - s)))
        case .sigmoid:
            let s = 1 / (1 + expf(-x))
            return (s, s * (1 - s))
        case .tanh:
            let t = tanhf(x)
            return (t, 1 - t * t)
        case .mish:
            let t = tanhf(softplus(x))
            let s = 1 / (1 + expf(-x))
            return (x * t, t + x * (1 - t * t) * s)
        case .hardswish:
            let v = x * min(max(x + 3, 0), 6) / 6
            return (v, x < -3 ? 0 : (x <= 3 ? x / 3 + 0.5 : 1))
        case .laplace:
            let z = (x - 0.707107) / (0.282095 * 1.4142135623730951)
            return (0.5 * (1 + erff(z)), expf(-z * z) / (0.282095 * 2.5066282746310002))
        case .sqrtsoftplus:
            let sp = softplus(x)
            let root = sp.squareRoot()
            let s = 1 / (1 + expf(-x))
            return (root, root > 0 ? s / (2 * root) : 0)
        case .linear:
            return (x, 1)
        }
    }

    @inline(__always)
    private static func exactGELU(_ x: Float) -> (Float, Float) {
        let cdf = 0.5 * (1 + erff(x * 0.70710678118654752))
        let pdf = expf(-0.5 * x * x) * 0.3989422804014327
        return (x * cdf, cdf + x * pdf)
    }

    @inline(__always)
    private static func tanhGELU(_ x: Float, c: Float) -> (Float, Float) {
        let t = tanhf(c * (x + 0.044715 * x * x * x))
        return (0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x))
    }

    /// Value and derivative of the tanh GELU with gelu_new's constant √(2/π), 16 lanes at a time.
    @inline(__always)
    private static func tanhGELU(_ x: V) -> (V, V) {
        let c: Float = 0.7978845608028654
        let x2: V = x * x
        let u: V = c * (x + 0.044715 * x2 * x)
        let t: V = tanhV(u)
        let onePlusT: V = 1 + t
        let value: V = 0.5 * x * onePlusT
        let du: V = c * (1 + 0.134145 * x2)  // c·(1 + 3·0.044715·x²)
        let derivative: V = 0.5 * onePlusT + (0.5 * x) * (1 - t * t) * du
        return (value, derivative)
    }
}
