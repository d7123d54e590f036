/// T5's layer norm: RMS only, no mean subtraction and no bias (T5LayerNorm in transformers):
///
///     y = weight ⊙ x / sqrt(mean(x²) + ε)
///
/// accumulated in fp32 as transformers does even for half-precision inputs.
enum RMSNorm {
    /// y (rows, D) = RMSNorm(x (rows, D)); `y` may alias `x`.
    static func forward(
        _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, epsilon: Float,
        rows: Int, dim: Int, into y: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows {
            let xr = x + r * dim, yr = y + r * dim
            let variance = Vector.sumOfSquares(xr, dim) / Float(dim)
            let inv = 1 / (variance + epsilon).squareRoot()
            var i = 0
            while i + Vector.width <= dim {
                Vector.store(Vector.load(weight + i) * (Vector.load(xr + i) * inv), yr + i)
                i += Vector.width
            }
            while i < dim { yr[i] = weight[i] * (xr[i] * inv); i += 1 }
        }
    }
}

extension RMSNorm {
    /// Backward of `forward`. With r = 1/sqrt(mean(x²) + ε) per row and y_i = w_i·x_i·r:
    ///
    ///     dWeight_i += Σ_rows dy_i·x_i·r
    ///     dx_i      += r·w_i·dy_i − x_i·r³·(Σ_j w_j·dy_j·x_j) / D
    ///
    /// dX (rows, D) and dWeight (D) accumulate; `dWeight` is nil for a frozen weight. `dX` must not alias `dY`.
    static func backward(
        _ dY: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>, epsilon: Float,
        rows: Int, dim: Int, dX: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?
    ) {
        for r in 0..<rows {
            let xr = x + r * dim, dyr = dY + r * dim, dxr = dX + r * dim
            let variance = Vector.sumOfSquares(xr, dim) / Float(dim)
            let inv = 1 / (variance + epsilon).squareRoot()
            // Σ_j w_j·dy_j·x_j
            var acc = Vector.V()
            var i = 0
            while i + Vector.width <= dim {
                acc = acc.addingProduct(Vector.load(weight + i) * Vector.load(dyr + i), Vector.load(xr + i))
                i += Vector.width
            }
            var dot = acc.sum()
            while i < dim { dot += weight[i] * dyr[i] * xr[i]; i += 1 }
            let c = dot * inv * inv * inv / Float(dim)
            i = 0
            while i + Vector.width <= dim {
                let xv = Vector.load(xr + i), dyv = Vector.load(dyr + i)
                Vector.store(Vector.load(dxr + i) + inv * Vector.load(weight + i) * dyv - c * xv, dxr + i)
                i += Vector.width
            }
            while i < dim { dxr[i] += inv * weight[i] * dyr[i] - c * xr[i]; i += 1 }
            if let dWeight {
                i = 0
                while i + Vector.width <= dim {
                    Vector.store(Vector.load(dWeight + i).addingProduct(Vector.load(dyr + i), Vector.load(xr + i) * inv), dWeight + i)
                    i += Vector.width
                }
                while i < dim { dWeight[i] += dyr[i] * xr[i] * inv; i += 1 }
            }
        }
    }
}
