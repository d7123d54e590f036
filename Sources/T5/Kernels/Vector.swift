/// SIMD primitives over contiguous fp32 spans, used by the norm, softmax, activation and attention kernels.
///
/// Each walks 16 lanes at a time (`SIMD16<Float>`, one AVX-512 register or two AVX2 ones) and finishes the
/// tail with scalars. Pointers are unaligned-safe.
enum Vector {
    typealias V = SIMD16<Float>
    static let width = V.scalarCount

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// Σ of the lanes, by halves (`SIMD.sum()` is an out-of-line generic call on Linux).
    @inline(__always)
    static func sum(_ v: V) -> Float {
        let h = v.lowHalf + v.highHalf
        let q = h.lowHalf + h.highHalf
        return (q[0] + q[2]) + (q[1] + q[3])
    }

    /// Σ x[i]·y[i], with two accumulators so consecutive fused multiply-adds do not wait on each other.
    @inline(__always)
    static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        var a0 = V(), a1 = V()
        var i = 0
        while i + 2 * width <= n {
            a0 = a0.addingProduct(load(x + i), load(y + i))
            a1 = a1.addingProduct(load(x + i + width), load(y + i + width))
            i += 2 * width
        }
        if i + width <= n {
            a0 = a0.addingProduct(load(x + i), load(y + i))
            i += width
        }
        var s = (a0 + a1).sum()
        while i < n { s += x[i] * y[i]; i += 1 }
        return s
    }

    /// Σ x[i]².
    @inline(__always)
    static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        dot(x, x, n)
    }

    /// max x[i] (−∞ for an empty span).
    @inline(__always)
    static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = -Float.infinity
        var i = 0
        if n >= width {
            // `replacing(with:where:)` lowers to a vector compare and blend; `pointwiseMax` stays a call.
            var acc = V(repeating: -.infinity)
            while i + width <= n {
                let v = load(x + i)
                acc.replace(with: v, where: v .> acc)
                i += width
            }
            m = acc.max()
        }
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        return m
    }

    /// Lane-wise min(max(v, lo), hi) as compares and blends (`clamped` and `pointwiseMax` are not inlined).
    @inline(__always)
    static func clamp(_ v: V, _ lo: V, _ hi: V) -> V {
        var r = v
        r.replace(with: lo, where: v .< lo)
        r.replace(with: hi, where: v .> hi)
        return r
    }

    /// Lane-wise max(v, 0).
    @inline(__always)
    static func relu(_ v: V) -> V {
        var r = v
        r.replace(with: V(), where: v .< 0)
        return r
    }

    /// x[i] *= s.
    @inline(__always)
    static func scale(_ x: UnsafeMutablePointer<Float>, by s: Float, _ n: Int) {
        var i = 0
        while i + width <= n {
            store(load(x + i) * s, x + i)
            i += width
        }
        while i < n { x[i] *= s; i += 1 }
    }

    /// y[i] += x[i].
    @inline(__always)
    static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + width <= n {
            store(load(y + i) + load(x + i), y + i)
            i += width
        }
        while i < n { y[i] += x[i]; i += 1 }
    }

    /// Whether any of the 16 values at x is greater than t (NaN is not): compare, blend, sum by halves, all
    /// inlined (`any(_:)` of a mask is an out-of-line generic call on Linux).
    @inline(__always)
    static func anyGreater(_ x: UnsafePointer<Float>, than t: Float) -> Bool {
        var hits = V()
        hits.replace(with: 1, where: load(x) .> V(repeating: t))
        return sum(hits) > 0
    }

    /// x[i] += a for i < n.
    @inline(__always)
    static func add(_ a: Float, to x: UnsafeMutablePointer<Float>, _ n: Int) {
        let av = V(repeating: a)
        var i = 0
        while i + width <= n {
            store(load(x + i) + av, x + i)
            i += width
        }
        while i < n { x[i] += a; i += 1 }
    }

    /// y[i] += a · x[i].
    @inline(__always)
    static func addScaled(_ x: UnsafePointer<Float>, _ a: Float, into y: UnsafeMutablePointer<Float>, _ n: Int) {
        let av = V(repeating: a)
        var i = 0
        while i + width <= n {
            store(load(y + i).addingProduct(load(x + i), av), y + i)
            i += width
        }
        while i < n { y[i] += a * x[i]; i += 1 }
    }

    /// Index of the largest element, the first on ties (torch.argmax): a vector max, then a scan for it.
    @inline(__always)
    static func argmax(_ x: UnsafePointer<Float>, _ n: Int) -> Int {
        let m = max(x, n)
        for i in 0..<n where x[i] == m { return i }
        return 0
    }

    /// x[i] *= y[i].
    @inline(__always)
    static func multiply(_ x: UnsafeMutablePointer<Float>, by y: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + width <= n {
            store(load(x + i) * load(y + i), x + i)
            i += width
        }
        while i < n { x[i] *= y[i]; i += 1 }
    }

    /// e^x for 16 lanes, accurate to about 2 ulp over the range softmax uses (x ≤ 0); inputs below −87.3
    /// flush to 0, as expf does; inputs are clamped at 88. Cody–Waite range reduction x = n·ln2 + r, then a
    /// degree-6 polynomial for e^r, then 2^n built in the exponent bits.
    ///
    /// n is rounded with the 1.5·2²³ trick (adding it leaves n in the low mantissa bits) instead of
    /// `rounded()` and an Int32 conversion, which Swift does not lower to vector instructions.
    @inline(__always)
    static func exp(_ x: V) -> V {
        let lo = V(repeating: -87.33654), hi = V(repeating: 88.0)
        let magic = V(repeating: 12_582_912)  // 1.5 · 2^23
        let xc = clamp(x, lo, hi)
        let shifted = magic.addingProduct(xc, V(repeating: 1.442695040888963))
        let n = shifted - magic
        var r = xc.addingProduct(n, V(repeating: -0.693145751953125))
        r = r.addingProduct(n, V(repeating: -1.428606765330187e-06))
        var p = V(repeating: 1.0 / 720)
        p = V(repeating: 1.0 / 120).addingProduct(p, r)
        p = V(repeating: 1.0 / 24).addingProduct(p, r)
        p = V(repeating: 1.0 / 6).addingProduct(p, r)
        p = V(repeating: 0.5).addingProduct(p, r)
        p = V(repeating: 1).addingProduct(p, r)
        p = V(repeating: 1).addingProduct(p, r)
        let integer = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((integer &+ 127) &<< 23, to: V.self)
        var result = p * scale
        result.replace(with: V(), where: x .< lo)
        return result
    }
}
