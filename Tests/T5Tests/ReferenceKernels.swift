import Foundation
@testable import T5

/// Naive Float64 forwards of the kernels, written from the formulas (transformers / torch) rather than from the
/// optimized code, and central differences over them: the reference for every backward kernel.
enum Reference {
    /// Central difference of f at x, coordinate by coordinate.
    static func gradient(of f: ([Double]) -> Double, at x: [Double], step h: Double = 1e-6) -> [Double] {
        var x = x
        var g = [Double](repeating: 0, count: x.count)
        for i in x.indices {
            let saved = x[i]
            x[i] = saved + h
            let plus = f(x)
            x[i] = saved - h
            let minus = f(x)
            x[i] = saved
            g[i] = (plus - minus) / (2 * h)
        }
        return g
    }

    /// Σ r_i·y_i: the scalar whose gradient with respect to y is r (the upstream gradient dY).
    static func dot(_ r: [Float], _ y: [Double]) -> Double {
        zip(r, y).reduce(0) { $0 + Double($1.0) * $1.1 }
    }

    static func rmsNorm(_ x: [Double], weight: [Double], epsilon: Double, rows: Int, dim: Int) -> [Double] {
        var y = [Double](repeating: 0, count: rows * dim)
        for r in 0..<rows {
            var ms = 0.0
            for i in 0..<dim { ms += x[r * dim + i] * x[r * dim + i] }
            let inv = 1 / (ms / Double(dim) + epsilon).squareRoot()
            for i in 0..<dim { y[r * dim + i] = weight[i] * x[r * dim + i] * inv }
        }
        return y
    }

    static func softmax(_ x: [Double]) -> [Double] {
        let m = x.max() ?? 0
        let e = x.map { Foundation.exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    static func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
    static func softplus(_ x: Double) -> Double { Foundation.log1p(Foundation.exp(x)) }
    static func gelu(_ x: Double) -> Double { 0.5 * x * (1 + Foundation.erf(x / 2.0.squareRoot())) }

    /// transformers' ACT2FN formulas (activations.py) in Float64.
    static func activation(_ kind: Activation, _ x: Double) -> Double {
        switch kind {
        case .relu: return max(x, 0)
        case .relu2: return max(x, 0) * max(x, 0)
        case .relu6: return min(max(x, 0), 6)
        case .leakyRelu: return x >= 0 ? x : 0.01 * x
        case .gelu, .geluPython: return gelu(x)
        case .gelu10: return min(max(gelu(x), -10), 10)
        case .geluNew, .geluPytorchTanh, .geluPythonTanh, .geluAccurate:
            return 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        case .geluFast: return 0.5 * x * (1 + Foundation.tanh(x * 0.7978845608 * (1 + 0.044715 * x * x)))
        case .quickGelu: return x * sigmoid(1.702 * x)
        case .silu, .swish: return x * sigmoid(x)
        case .sigmoid: return sigmoid(x)
        case .tanh: return Foundation.tanh(x)
        case .mish: return x * Foundation.tanh(softplus(x))
        case .hardswish: return x * min(max(x + 3, 0), 6) / 6
        case .laplace: return 0.5 * (1 + Foundation.erf((x - 0.707107) / (0.282095 * 2.0.squareRoot())))
        case .sqrtsoftplus: return softplus(x).squareRoot()
        case .linear: return x
        }
    }

    /// One head of T5 attention: softmax(q·kᵀ + bias(clamp(j − i)) + mask) ⊙ dropoutMask · v, no scaling.
    /// q (Tq, K), k and v (L, K) dense; `bias` (2·maxDistance + 1) indexed by clamped distance + maxDistance.
    static func attention(
        q: [Double], k: [Double], v: [Double], queries: Int, keyLength: Int, headDim: Int,
        causal: Bool, bias: [Double]?, maxDistance: Int, dropoutMask: [Double]?
    ) -> [Double] {
        var out = [Double](repeating: 0, count: queries * headDim)
        for i in 0..<queries {
            let visible = causal ? min(i + 1, keyLength) : keyLength
            var scores = [Double]()
            for j in 0..<visible {
                var s = 0.0
                for c in 0..<headDim { s += q[i * headDim + c] * k[j * headDim + c] }
                if let bias { s += bias[min(max(j - i, -maxDistance), maxDistance) + maxDistance] }
                scores.append(s)
            }
            let p = softmax(scores)
            for j in 0..<visible {
                let w = p[j] * (dropoutMask?[i * keyLength + j] ?? 1)
                for c in 0..<headDim { out[i * headDim + c] += w * v[j * headDim + c] }
            }
        }
        return out
    }

    /// torch's CrossEntropyLoss(ignore_index=-100, label_smoothing=ε, reduction="mean").
    static func crossEntropy(_ logits: [Double], targets: [Int], vocab: Int, labelSmoothing eps: Double) -> Double {
        var nll = 0.0, smooth = 0.0, count = 0
        for (r, y) in targets.enumerated() where y != -100 {
            let row = Array(logits[r * vocab ..< (r + 1) * vocab])
            let m = row.max() ?? 0
            let lse = m + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) })
            nll += lse - row[y]
            smooth += row.reduce(0) { $0 + (lse - $1) }
            count += 1
        }
        return (1 - eps) * nll / Double(count) + eps / Double(vocab) * smooth / Double(count)
    }

    /// y (rows, out) = x (rows, in) · wᵀ, w stored (out, in).
    static func linear(_ x: [Double], _ w: [Double], rows: Int, inFeatures: Int, outFeatures: Int) -> [Double] {
        var y = [Double](repeating: 0, count: rows * outFeatures)
        for r in 0..<rows {
            for o in 0..<outFeatures {
                var s = 0.0
                for i in 0..<inFeatures { s += x[r * inFeatures + i] * w[o * inFeatures + i] }
                y[r * outFeatures + o] = s
            }
        }
        return y
    }
}
