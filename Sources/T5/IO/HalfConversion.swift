/// Conversions between fp32 and the 16-bit float formats of checkpoints, done on bits so they are
/// exact and portable (Swift's `Float16` is missing on macOS/x86_64).
///
/// Decoding is exact for every input, NaN payloads included (they are kept, shifted, as numpy
/// does). The decoding loops are branch-free scalar code on purpose: LLVM vectorizes them
/// (about 0.3 ns per fp16 value), while the same steps written with Swift's `SIMD8` types and
/// `replace(with:where:)` measured ten times slower. Encoding rounds to nearest, ties to even,
/// and canonicalizes NaN the way PyTorch's `.half()` / `.bfloat16()` do, since those produce
/// the files transformers saves.
enum HalfConversion {
    /// fp16 bits → fp32 bits (Fabian Giesen's exact method, with selects instead of branches).
    @inline(__always)
    static func floatBits(fromHalf h: UInt16) -> UInt32 {
        let shiftedExponent: UInt32 = 0x7C00 << 13
        let magnitude = UInt32(h & 0x7FFF) << 13
        let exponent = magnitude & shiftedExponent
        var o = magnitude &+ ((127 - 15) << 23)
        // Inf/NaN: the exponent must become all ones.
        o &+= exponent == shiftedExponent ? ((128 - 16) << 23) : 0
        // Zero or subnormal: let the FPU renormalize (exact, the result is representable).
        let renormalized = (Float(bitPattern: o &+ (1 << 23)) - Float(bitPattern: 113 << 23)).bitPattern
        o = exponent == 0 ? renormalized : o
        return o | UInt32(h & 0x8000) << 16
    }

    /// Converts `count` little-endian fp16 values at `source` (any alignment) to fp32.
    static func decodeHalf(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let h = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            destination[i] = Float(bitPattern: floatBits(fromHalf: h))
        }
    }

    /// Converts `count` little-endian bf16 values at `source` (any alignment) to fp32:
    /// bf16 is the top half of an fp32, so this is a shift.
    static func decodeBFloat16(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let h = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            destination[i] = Float(bitPattern: UInt32(h) << 16)
        }
    }

    /// fp32 → fp16 bits, round to nearest even; overflow → ±Inf, NaN → ±0x7E00
    /// (Giesen's `float_to_half_fast3_rtne`; matches PyTorch's `c10::Half`).
    static func halfBits(from value: Float) -> UInt16 {
        var bits = value.bitPattern
        let sign = bits & 0x8000_0000
        bits ^= sign
        let result: UInt32
        if bits >= (127 + 16) << 23 {
            result = bits > 0x7F80_0000 ? 0x7E00 : 0x7C00
        } else if bits < (127 - 14) << 23 {
            // Subnormal or zero in fp16: adding a magic number makes the FPU do the rounding.
            let magic: UInt32 = ((127 - 15) + (23 - 10) + 1) << 23
            result = (Float(bitPattern: bits) + Float(bitPattern: magic)).bitPattern &- magic
        } else {
            let mantissaOdd = (bits >> 13) & 1
            bits &+= UInt32(bitPattern: Int32(15 - 127) << 23) &+ 0xFFF
            bits &+= mantissaOdd
            result = bits >> 13
        }
        return UInt16(truncatingIfNeeded: result | sign >> 16)
    }

    /// fp32 → bf16 bits, round to nearest even; NaN → 0x7FC0 (PyTorch's `c10::BFloat16`).
    static func bfloat16Bits(from value: Float) -> UInt16 {
        if value.isNaN { return 0x7FC0 }
        let bits = value.bitPattern
        let roundingBias = ((bits >> 16) & 1) &+ 0x7FFF
        return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
    }
}
