/// Inverted dropout, as nn.Dropout in training mode: each element is zeroed with probability p and the
/// survivors are scaled by 1/(1 − p), so the expectation is unchanged and evaluation needs no rescale.
///
/// The mask is drawn from a `SeededGenerator`, so a seed reproduces a training run; it is not torch's
/// Philox stream, so masks do not match PyTorch element for element (only their distribution does).
enum Dropout {
    /// mask[i] ← 0 with probability `rate`, else 1/(1 − rate). `rate` ≥ 1 zeroes everything (as torch does
    /// for p = 1); `rate` 0 gives all ones without drawing.
    static func makeMask(rate: Float, count n: Int, generator: inout SeededGenerator, into mask: UnsafeMutablePointer<Float>) {
        precondition(rate >= 0, "dropout rate \(rate) is negative")
        if rate == 0 { mask.update(repeating: 1, count: n); return }
        if rate >= 1 { mask.update(repeating: 0, count: n); return }
        let keep = 1 / (1 - rate)
        // u = k·2^-24 uniform on the 2^24-point grid of [0, 1) (`nextUnit`): P(u < rate) = rate up to 2^-24.
        // Compared as integers: k·2^-24 < rate ⇔ k < rate·2^24 ⇔ k < ⌈rate·2^24⌉ (both products are exact),
        // the same draws and the same masks as `nextUnit() < rate` without the int-to-float conversion.
        let threshold = UInt64((Double(rate) * 0x1p24).rounded(.up))
        for i in 0..<n { mask[i] = generator.next() >> 40 < threshold ? 0 : keep }
    }

    /// x (n) ← x ⊙ mask, with a fresh mask drawn into `mask` (n) for the backward.
    static func forward(
        _ x: UnsafeMutablePointer<Float>, _ n: Int, rate: Float, generator: inout SeededGenerator,
        mask: UnsafeMutablePointer<Float>
    ) {
        makeMask(rate: rate, count: n, generator: &generator, into: mask)
        Vector.multiply(x, by: mask, n)
    }

    /// dX (n) += dY ⊙ mask.
    static func backward(_ dY: UnsafePointer<Float>, mask: UnsafePointer<Float>, into dX: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + Vector.width <= n {
            Vector.store(Vector.load(dX + i).addingProduct(Vector.load(dY + i), Vector.load(mask + i)), dX + i)
            i += Vector.width
        }
        while i < n { dX[i] += dY[i] * mask[i]; i += 1 }
    }
}
