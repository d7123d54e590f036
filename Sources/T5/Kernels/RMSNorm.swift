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
