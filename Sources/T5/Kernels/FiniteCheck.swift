/// Finds NaN and infinity in stored weights and computed rows.
///
/// A stored float is non-finite exactly when its exponent bits are all ones. Adding one unit of the lowest
/// exponent bit to the masked exponent carries into the sign bit only then (0x7F80_0000 + 0x0080_0000 =
/// 0x8000_0000 for fp32; 0x7F80 + 0x0080 for bf16, 0x7C00 + 0x0400 for fp16), so a block is checked by
/// OR-ing those sums over whole vectors and testing one bit: integer SIMD, no compares in the loop.
enum FiniteCheck {
    /// The encodings `storedIsFinite` reads.
    enum Encoding {
        case f32, bf16, f16
    }

    /// Whether every one of the `count` values stored at `p` (any alignment) is finite.
    static func storedIsFinite(_ p: UnsafeRawPointer, count: Int, encoding: Encoding) -> Bool {
        switch encoding {
        case .f32:
            return allExponentsFinite(p, count: count, as: SIMD16<UInt32>.self, mask: 0x7F80_0000, unit: 0x0080_0000)
        case .bf16:
            return allExponentsFinite(p, count: count, as: SIMD32<UInt16>.self, mask: 0x7F80, unit: 0x0080)
        case .f16:
            return allExponentsFinite(p, count: count, as: SIMD32<UInt16>.self, mask: 0x7C00, unit: 0x0400)
        }
    }

    /// Whether every value of a row of floats is finite.
    static func isFinite(_ x: UnsafePointer<Float>, _ n: Int) -> Bool {
        storedIsFinite(UnsafeRawPointer(x), count: n, encoding: .f32)
    }

    @inline(__always)
    private static func allExponentsFinite<V: SIMD>(
        _ p: UnsafeRawPointer, count: Int, as _: V.Type, mask: V.Scalar, unit: V.Scalar
    ) -> Bool where V.Scalar: FixedWidthInteger & UnsignedInteger {
        let lanes = V.scalarCount, size = MemoryLayout<V.Scalar>.size
        let sign: V.Scalar = 1 << (V.Scalar.bitWidth - 1)
        let maskV = V(repeating: mask), unitV = V(repeating: unit)
        var i = 0
        // Blocks of 64 vectors, then one test: a non-finite weight is found within a block of where it is.
        while i + 64 * lanes <= count {
            var acc = V(repeating: 0)
            for j in 0..<64 {
                let v = p.loadUnaligned(fromByteOffset: (i + j * lanes) * size, as: V.self)
                acc |= (v & maskV) &+ unitV
            }
            if (acc & V(repeating: sign)) != V(repeating: 0) { return false }
            i += 64 * lanes
        }
        while i < count {
            let v = p.loadUnaligned(fromByteOffset: i * size, as: V.Scalar.self)
            if ((v & mask) &+ unit) & sign != 0 { return false }
            i += 1
        }
        return true
    }
}
