/// Conversions between fp32 and the 16-bit float formats of checkpoints, done on bits so they are
/// exact, portable (Swift's `Float16` is missing on macOS/x86_64) and vectorizable.
///
/// Decoding is exact for every input, NaN payloads included (they are kept, shifted, as numpy
/// does). Encoding rounds to nearest, ties to even, and canonicalizes NaN the way PyTorch's
/// `.half()` / `.bfloat16()` do, since those produce the files transformers saves.
enum HalfConversion {
    /// fp16 bits → fp32 bits (Fabian Giesen's exact branch-free method, scalar form).
    @inline(__always)
    static func floatBits(fromHalf h: UInt16) -> UInt32 {
        let shiftedExponent: UInt32 = 0x7C00 << 13
        var o = UInt32(h & 0x7FFF) << 13
        let exponent = o & shiftedExponent
        o &+= (127 - 15) << 23
        if exponent == shiftedExponent {
            o &+= (128 - 16) << 23  // Inf/NaN: exponent all ones
        } else if exponent == 0 {
            // Zero or subnormal: let the FPU renormalize (exact, the result is representable).
            o &+= 1 << 23
            o = (Float(bitPattern: o) - Float(bitPattern: 113 << 23)).bitPattern
        }
        return o | UInt32(h & 0x8000) << 16
    }

    /// Converts `count` little-endian fp16 values at `source` (any alignment) to fp32.
    static func decodeHalf(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        let shiftedExponent = SIMD8<UInt32>(repeating: 0x7C00 << 13)
        let magic = SIMD8<Float>(repeating: Float(bitPattern: 113 << 23))
        let out = UnsafeMutableRawPointer(destination)
        var i = 0
        while i + 8 <= count {
            let h = SIMD8<UInt32>(truncatingIfNeeded: source.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self))
            var o = (h & 0x7FFF) &<< 13
            let exponent = o & shiftedExponent
            o &+= (127 - 15) << 23
            o.replace(with: o &+ ((128 - 16) << 23), where: exponent .== shiftedExponent)
            let renormalized = unsafeBitCast(o &+ (1 << 23), to: SIMD8<Float>.self) - magic
            o.replace(with: unsafeBitCast(renormalized, to: SIMD8<UInt32>.self), where: exponent .== 0)
            o |= (h & 0x8000) &<< 16
            out.storeBytes(of: o, toByteOffset: 4 * i, as: SIMD8<UInt32>.self)
            i += 8
        }
        while i < count {
            let h = source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
            destination[i] = Float(bitPattern: floatBits(fromHalf: UInt16(littleEndian: h)))
            i += 1
        }
    }

    /// Converts `count` little-endian bf16 values at `source` (any alignment) to fp32:
    /// bf16 is the top half of an fp32, so this is a shift.
    static func decodeBFloat16(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        let out = UnsafeMutableRawPointer(destination)
        var i = 0
        while i + 8 <= count {
            let h = SIMD8<UInt32>(truncatingIfNeeded: source.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self))
            out.storeBytes(of: h &<< 16, toByteOffset: 4 * i, as: SIMD8<UInt32>.self)
            i += 8
        }
        while i < count {
            let h = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            destination[i] = Float(bitPattern: UInt32(h) << 16)
            i += 1
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
