import Foundation

/// Numerically stable softmax and log-softmax over rows.
enum Softmax {
    /// x[0..<n] ← softmax(x[0..<n]) in place: exp(x − max) / Σ exp(x − max).
    @inline(__always)
    static func forwardInPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        let m = Vector.max(x, n)
        var acc = Vector.V()
        var i = 0
        while i + Vector.width <= n {
            let e = Vector.exp(Vector.load(x + i) - m)
            Vector.store(e, x + i)
            acc += e
            i += Vector.width
        }
        var sum = acc.sum()
        while i < n {
            let e = Foundation.exp(x[i] - m)
            x[i] = e
            sum += e
            i += 1
        }
        Vector.scale(x, by: 1 / sum, n)
    }

    /// log Σ exp(x): the normalizer of log-softmax, log p_i = x_i − logSumExp(x).
    /// Two passes (max, then Σ exp(x − max)) with two vector accumulators; float32 like torch's log_softmax.
    static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let m = Vector.max(x, n)
        if m == -.infinity { return m }
        var a0 = Vector.V(), a1 = Vector.V()
        var i = 0
        while i + 2 * Vector.width <= n {
            a0 += Vector.exp(Vector.load(x + i) - m)
            a1 += Vector.exp(Vector.load(x + i + Vector.width) - m)
            i += 2 * Vector.width
        }
        var sum = (a0 + a1).sum()
        while i < n { sum += Foundation.exp(x[i] - m); i += 1 }
        return m + Foundation.log(sum)
    }

    /// y ← log_softmax(x) for one row; `y` may alias `x`.
    static func logSoftmax(_ x: UnsafePointer<Float>, _ n: Int, into y: UnsafeMutablePointer<Float>) {
        let lse = logSumExp(x, n)
        for i in 0..<n { y[i] = x[i] - lse }
    }
}

extension Softmax {
    /// Backward of a softmax over n entries, given its output p:
    /// dX_i += p_i·(dY_i − Σ_j p_j·dY_j) (the Jacobian diag(p) − p·pᵀ applied to dY).
    static func backward(probabilities p: UnsafePointer<Float>, _ dY: UnsafePointer<Float>, into dX: UnsafeMutablePointer<Float>, _ n: Int) {
        let dot = Vector.dot(p, dY, n)
        for i in 0..<n { dX[i] += p[i] * (dY[i] - dot) }
    }

    /// The same, in place: g ← p ⊙ (g − Σ p·g). Attention's backward turns dP into dScores this way.
    @inline(__always)
    static func backwardInPlace(probabilities p: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ n: Int) {
        let dot = Vector.dot(p, g, n)
        for i in 0..<n { g[i] = p[i] * (g[i] - dot) }
    }
}
