import Foundation
import Testing
@testable import T5

/// Each backward kernel against central differences of a Float64 reference forward (ReferenceKernels.swift),
/// on small odd shapes. Every check also confirms that the Float forward computes the reference's function,
/// and that gradients accumulate onto what the buffer held.
@Suite struct KernelBackwardTests {
    static func random(_ n: Int, _ range: ClosedRange<Float>, _ g: inout SeededGenerator) -> [Float] {
        (0..<n).map { _ in range.lowerBound + (range.upperBound - range.lowerBound) * g.nextUnit() }
    }

    static func doubles(_ x: [Float]) -> [Double] { x.map(Double.init) }

    /// Expects relative L2 ≤ tolerance and describes the worst element otherwise.
    static func expectClose(_ actual: [Float], _ expected: [Double], _ tolerance: Double, _ what: String) {
        let error = relativeL2(actual.map(Double.init), expected)
        var worst = 0, worstDiff = 0.0
        for i in actual.indices where abs(Double(actual[i]) - expected[i]) > worstDiff {
            worst = i; worstDiff = abs(Double(actual[i]) - expected[i])
        }
        #expect(error <= tolerance, "\(what): relative L2 \(error); worst element \(worst): \(actual[worst]) vs \(expected[worst])")
    }

    /// The part of an accumulated buffer that the kernel added to `prefill`.
    static func added(_ t: Tensor, _ prefill: [Float]) -> [Float] {
        zip(t.array, prefill).map { $0 - $1 }
    }

    // MARK: RMSNorm

    @Test(arguments: [(3, 7), (2, 37)]) func rmsNorm(rows: Int, dim: Int) {
        var g = SeededGenerator(seed: UInt64(rows * 100 + dim))
        let x = Self.random(rows * dim, -2...2, &g), w = Self.random(dim, 0.5...1.5, &g), dY = Self.random(rows * dim, -1...1, &g)
        let eps: Float = 1e-6
        let xt = Tensor(shape: [rows, dim], values: x), wt = Tensor(shape: [dim], values: w)
        let y = Tensor(zeros: [rows, dim])
        RMSNorm.forward(xt.pointer, weight: wt.pointer, epsilon: eps, rows: rows, dim: dim, into: y.pointer)
        Self.expectClose(y.array, Reference.rmsNorm(Self.doubles(x), weight: Self.doubles(w), epsilon: Double(eps), rows: rows, dim: dim), 1e-6, "RMSNorm forward")

        let prefillX = Self.random(rows * dim, -1...1, &g), prefillW = Self.random(dim, -1...1, &g)
        let dX = Tensor(shape: [rows, dim], values: prefillX), dW = Tensor(shape: [dim], values: prefillW)
        let dYt = Tensor(shape: [rows, dim], values: dY)
        RMSNorm.backward(dYt.pointer, x: xt.pointer, weight: wt.pointer, epsilon: eps, rows: rows, dim: dim, dX: dX.pointer, dWeight: dW.pointer)
        let expectedX = Reference.gradient(of: { Reference.dot(dY, Reference.rmsNorm($0, weight: Self.doubles(w), epsilon: Double(eps), rows: rows, dim: dim)) }, at: Self.doubles(x))
        let expectedW = Reference.gradient(of: { Reference.dot(dY, Reference.rmsNorm(Self.doubles(x), weight: $0, epsilon: Double(eps), rows: rows, dim: dim)) }, at: Self.doubles(w))
        Self.expectClose(Self.added(dX, prefillX), expectedX, 1e-5, "RMSNorm dX \(rows)×\(dim)")
        Self.expectClose(Self.added(dW, prefillW), expectedW, 1e-5, "RMSNorm dWeight \(rows)×\(dim)")

        // A frozen weight: dX only.
        let dX2 = Tensor(zeros: [rows, dim])
        RMSNorm.backward(dYt.pointer, x: xt.pointer, weight: wt.pointer, epsilon: eps, rows: rows, dim: dim, dX: dX2.pointer, dWeight: nil)
        Self.expectClose(dX2.array, expectedX, 1e-5, "RMSNorm dX without dWeight")
    }

    // MARK: Activations

    /// 35 points across (−5, 5) that stay clear of every kink (0, ±3, 6), and two far out (gelu_10's clip).
    static let activationPoints: [Float] = (0..<35).map { -5 + 10 * (Float($0) + 0.37) / 35 } + [11.5, -11.5]

    @Test(arguments: Activation.allCases) func activation(kind: Activation) {
        let x = Self.activationPoints, n = x.count
        var g = SeededGenerator(seed: 5)
        let dY = Self.random(n, -1...1, &g), linear = Self.random(n, -2...2, &g), prefill = Self.random(n, -1...1, &g)
        let xt = Tensor(shape: [n], values: x)

        let y = xt.copy()
        Activations.forward(kind, y.pointer, n)
        Self.expectClose(y.array, x.map { Reference.activation(kind, Double($0)) }, 1e-6, "\(kind) forward")

        let dX = Tensor(shape: [n], values: prefill), dYt = Tensor(shape: [n], values: dY)
        Activations.backward(kind, x: xt.pointer, dY: dYt.pointer, dX: dX.pointer, n)
        let expected = Reference.gradient(of: { Reference.dot(dY, $0.map { Reference.activation(kind, $0) }) }, at: Self.doubles(x), step: 1e-5)
        Self.expectClose(Self.added(dX, prefill), expected, 1e-5, "\(kind) backward")

        // Gated: y = act(gate) ⊙ linear.
        let linearT = Tensor(shape: [n], values: linear)
        let dGate = Tensor(shape: [n], values: prefill), dLinear = Tensor(shape: [n], values: prefill)
        Activations.gatedBackward(kind, gate: xt.pointer, linear: linearT.pointer, dY: dYt.pointer, dGate: dGate.pointer, dLinear: dLinear.pointer, n)
        let gated: ([Double], [Double]) -> Double = { a, b in
            Reference.dot(dY, zip(a, b).map { Reference.activation(kind, $0) * $1 })
        }
        let expectedGate = Reference.gradient(of: { gated($0, Self.doubles(linear)) }, at: Self.doubles(x), step: 1e-5)
        let expectedLinear = Reference.gradient(of: { gated(Self.doubles(x), $0) }, at: Self.doubles(linear), step: 1e-5)
        Self.expectClose(Self.added(dGate, prefill), expectedGate, 1e-5, "gated \(kind) dGate")
        Self.expectClose(Self.added(dLinear, prefill), expectedLinear, 1e-5, "gated \(kind) dLinear")
    }

    // MARK: Softmax

    @Test(arguments: [7, 23]) func softmax(n: Int) {
        var g = SeededGenerator(seed: UInt64(n))
        let x = Self.random(n, -3...3, &g), dY = Self.random(n, -1...1, &g), prefill = Self.random(n, -1...1, &g)
        let p = Tensor(shape: [n], values: x)
        Softmax.forwardInPlace(p.pointer, n)
        Self.expectClose(p.array, Reference.softmax(Self.doubles(x)), 1e-6, "softmax forward")
        let dX = Tensor(shape: [n], values: prefill), dYt = Tensor(shape: [n], values: dY)
        Softmax.backward(probabilities: p.pointer, dYt.pointer, into: dX.pointer, n)
        let expected = Reference.gradient(of: { Reference.dot(dY, Reference.softmax($0)) }, at: Self.doubles(x))
        Self.expectClose(Self.added(dX, prefill), expected, 1e-5, "softmax backward \(n)")
        Softmax.backwardInPlace(probabilities: p.pointer, dYt.pointer, n)
        Self.expectClose(dYt.array, expected, 1e-5, "softmax backward in place \(n)")
    }

    // MARK: Attention

    struct AttentionCase: CustomTestStringConvertible, Sendable {
        let queries: Int, keyLength: Int, causal: Bool, bias: Bool, dropout: Bool
        var testDescription: String { "q\(queries) L\(keyLength) causal \(causal) bias \(bias) dropout \(dropout)" }
    }

    /// d_kv 5 inside 3 heads (row stride 15, head 1 tested); relative bias with maxDistance 3, so distances
    /// beyond ±3 share the end entries.
    @Test(arguments: [
        AttentionCase(queries: 7, keyLength: 7, causal: true, bias: true, dropout: true),
        AttentionCase(queries: 7, keyLength: 7, causal: true, bias: true, dropout: false),
        AttentionCase(queries: 6, keyLength: 6, causal: false, bias: true, dropout: false),
        AttentionCase(queries: 3, keyLength: 7, causal: false, bias: false, dropout: false),
        AttentionCase(queries: 3, keyLength: 7, causal: false, bias: false, dropout: true),
        AttentionCase(queries: 1, keyLength: 4, causal: false, bias: true, dropout: false),
    ])
    func attention(c: AttentionCase) {
        let dk = 5, heads = 3, ld = heads * dk, head = 1, maxDistance = 3, width = 2 * maxDistance + 1
        let tq = c.queries, l = c.keyLength
        var g = SeededGenerator(seed: UInt64(tq * 10 + l) + (c.dropout ? 1000 : 0))
        // Strided buffers; only head 1's columns are the operands.
        let q = Self.random(tq * ld, -1.5...1.5, &g), k = Self.random(l * ld, -1.5...1.5, &g), v = Self.random(l * ld, -1...1, &g)
        let bias = Self.random(width, -1...1, &g), dOut = Self.random(tq * dk, -1...1, &g)
        var mask: [Float]?
        if c.dropout {
            let m = Tensor(zeros: [tq * l])
            Dropout.makeMask(rate: 0.3, count: tq * l, generator: &g, into: m.pointer)
            mask = m.array
        }
        func slice(_ x: [Float], _ rows: Int) -> [Double] {
            (0..<rows).flatMap { r in (0..<dk).map { Double(x[r * ld + head * dk + $0]) } }
        }
        let qh = slice(q, tq), kh = slice(k, l), vh = slice(v, l)
        func reference(_ q: [Double], _ k: [Double], _ v: [Double], _ b: [Double]) -> [Double] {
            Reference.attention(
                q: q, k: k, v: v, queries: tq, keyLength: l, headDim: dk, causal: c.causal,
                bias: c.bias ? b : nil, maxDistance: maxDistance, dropoutMask: mask.map(Self.doubles))
        }
        let qt = Tensor(shape: [tq, ld], values: q), kt = Tensor(shape: [l, ld], values: k), vt = Tensor(shape: [l, ld], values: v)
        let biasT = Tensor(shape: [width], values: bias)
        let biasCenter = UnsafePointer(biasT.pointer + maxDistance)
        let kind: Attention.Bias = c.bias ? .relative(biasCenter, maxDistance: maxDistance) : .none
        let maskT = mask.map { Tensor(shape: [tq * l], values: $0) }
        let offset = head * dk

        // Forward: the Double reference, and the inference kernel when there is no dropout.
        let probabilities = Tensor(zeros: [tq * l]), dropped = Tensor(zeros: [tq * l])
        let out = Tensor(zeros: [tq, dk])
        Attention.trainingForward(
            q: qt.pointer + offset, ldq: ld, keys: kt.pointer + offset, ldk: ld, values: vt.pointer + offset, ldv: ld,
            queries: tq, keyLength: l, headDim: dk, causal: c.causal, bias: kind,
            probabilities: probabilities.pointer, dropoutMask: maskT.map { UnsafePointer($0.pointer) }, dropped: dropped.pointer,
            out: out.pointer, ldo: dk)
        Self.expectClose(out.array, reference(qh, kh, vh, Self.doubles(bias)), 1e-5, "attention forward \(c.testDescription)")
        if !c.dropout {
            let scores = Tensor(zeros: [tq * l]), inference = Tensor(zeros: [tq, dk])
            Attention.forward(
                q: qt.pointer + offset, ldq: ld, keys: kt.pointer + offset, ldk: ld, values: vt.pointer + offset, ldv: ld,
                queries: tq, keyLength: l, headDim: dk, firstPosition: 0, causal: c.causal, bias: kind,
                scores: scores.pointer, out: inference.pointer, ldo: dk)
            Self.expectClose(out.array, Self.doubles(inference.array), 1e-6, "training vs inference forward")
        }

        // Backward into strided, prefilled buffers.
        let prefillQ = Self.random(tq * ld, -1...1, &g), prefillK = Self.random(l * ld, -1...1, &g)
        let prefillV = Self.random(l * ld, -1...1, &g), prefillBias = Self.random(width, -1...1, &g)
        let dQ = Tensor(shape: [tq, ld], values: prefillQ), dK = Tensor(shape: [l, ld], values: prefillK)
        let dV = Tensor(shape: [l, ld], values: prefillV), dBias = Tensor(shape: [width], values: prefillBias)
        let dOutT = Tensor(shape: [tq, dk], values: dOut)
        let scratch = Tensor(zeros: [2 * tq * l])
        Attention.backward(
            dOut: dOutT.pointer, ldo: dk,
            q: qt.pointer + offset, ldq: ld, keys: kt.pointer + offset, ldk: ld, values: vt.pointer + offset, ldv: ld,
            queries: tq, keyLength: l, headDim: dk, causal: c.causal, bias: kind,
            probabilities: probabilities.pointer, dropoutMask: maskT.map { UnsafePointer($0.pointer) },
            dQ: dQ.pointer + offset, dKeys: dK.pointer + offset, dValues: dV.pointer + offset,
            dBias: c.bias ? dBias.pointer + maxDistance : nil, scratch: scratch.pointer)

        let b = Self.doubles(bias)
        let expectedQ = Reference.gradient(of: { Reference.dot(dOut, reference($0, kh, vh, b)) }, at: qh)
        let expectedK = Reference.gradient(of: { Reference.dot(dOut, reference(qh, $0, vh, b)) }, at: kh)
        let expectedV = Reference.gradient(of: { Reference.dot(dOut, reference(qh, kh, $0, b)) }, at: vh)
        func headSlice(_ t: Tensor, _ prefill: [Float], _ rows: Int) -> [Float] {
            let a = Self.added(t, prefill)
            return (0..<rows).flatMap { r in (0..<dk).map { a[r * ld + offset + $0] } }
        }
        Self.expectClose(headSlice(dQ, prefillQ, tq), expectedQ, 1e-4, "attention dQ \(c.testDescription)")
        Self.expectClose(headSlice(dK, prefillK, l), expectedK, 1e-4, "attention dK \(c.testDescription)")
        Self.expectClose(headSlice(dV, prefillV, l), expectedV, 1e-4, "attention dV \(c.testDescription)")
        // Other heads' columns are untouched.
        for (t, prefill) in [(dQ, prefillQ), (dK, prefillK), (dV, prefillV)] {
            let a = t.array
            for i in a.indices where (i % ld) / dk != head { #expect(a[i] == prefill[i], "attention wrote outside its head at \(i)") }
        }
        if c.bias {
            let expectedBias = Reference.gradient(of: { Reference.dot(dOut, reference(qh, kh, vh, $0)) }, at: b)
            Self.expectClose(Self.added(dBias, prefillBias), expectedBias, 1e-4, "attention dBias \(c.testDescription)")
        }
    }

    // MARK: Embedding and relative position bias

    @Test func embedding() {
        let vocab = 5, dim = 7
        let ids: [Int32] = [3, 1, 3, 0, 3, 4]
        var g = SeededGenerator(seed: 11)
        let table = Self.random(vocab * dim, -1...1, &g), dX = Self.random(ids.count * dim, -1...1, &g)
        let prefill = Self.random(vocab * dim, -1...1, &g)
        let lookup: ([Double]) -> [Double] = { t in ids.flatMap { id in (0..<dim).map { t[Int(id) * dim + $0] } } }
        let tableT = Tensor(shape: [vocab, dim], values: table), x = Tensor(zeros: [ids.count, dim])
        ids.withUnsafeBufferPointer { Embedding.forward(ids: $0.baseAddress!, count: ids.count, table: tableT.pointer, dim: dim, into: x.pointer) }
        Self.expectClose(x.array, lookup(Self.doubles(table)), 0, "embedding forward")
        let dTable = Tensor(shape: [vocab, dim], values: prefill), dXt = Tensor(shape: [ids.count, dim], values: dX)
        ids.withUnsafeBufferPointer { Embedding.backward(ids: $0.baseAddress!, count: ids.count, dX: dXt.pointer, dim: dim, dTable: dTable.pointer) }
        let expected = Reference.gradient(of: { Reference.dot(dX, lookup($0)) }, at: Self.doubles(table))
        Self.expectClose(Self.added(dTable, prefill), expected, 1e-6, "embedding backward (id 3 three times, id 2 never)")
    }

    @Test(arguments: [true, false]) func relativePositionBias(bidirectional: Bool) {
        let heads = 3, buckets = 8, maxDistance = 10
        var g = SeededGenerator(seed: bidirectional ? 1 : 2)
        let table = Self.random(buckets * heads, -1...1, &g)
        let expand: ([Double]) -> [Double] = { t in
            // compute_bias: values[h][d] = table[bucket(d), h], for every clamped distance d.
            let clamp = max(maxDistance, buckets)
            return (0..<heads).flatMap { h in
                (-clamp...clamp).map { d in
                    t[RelativePositionBias.bucket(relativePosition: d, bidirectional: bidirectional, numBuckets: buckets, maxDistance: maxDistance) * heads + h]
                }
            }
        }
        let tableT = Tensor(shape: [buckets, heads], values: table)
        let bias = RelativePositionBias(table: tableT.pointer, heads: heads, numBuckets: buckets, maxDistance: maxDistance, bidirectional: bidirectional)
        Self.expectClose(bias.values.array, expand(Self.doubles(table)), 0, "bias expansion")
        let dValues = Self.random(heads * bias.width, -1...1, &g), prefill = Self.random(buckets * heads, -1...1, &g)
        let dValuesT = Tensor(shape: [heads, bias.width], values: dValues), dTable = Tensor(shape: [buckets, heads], values: prefill)
        RelativePositionBias.backward(
            dValues: dValuesT.pointer, heads: heads, numBuckets: buckets, maxDistance: maxDistance,
            bidirectional: bidirectional, into: dTable.pointer)
        let expected = Reference.gradient(of: { Reference.dot(dValues, expand($0)) }, at: Self.doubles(table))
        Self.expectClose(Self.added(dTable, prefill), expected, 1e-6, "relative bias backward bidirectional=\(bidirectional)")
        // center(h, in:) addresses the same element as center(h).
        #expect(bias.center(2, in: dValuesT.pointer)[-4] == dValues[2 * bias.width + bias.maxDistance - 4])
    }

    // MARK: Linear

    @Test func linear() {
        let rows = 5, inF = 7, outF = 3
        var g = SeededGenerator(seed: 3)
        let x = Self.random(rows * inF, -1...1, &g), w = Self.random(outF * inF, -1...1, &g), dY = Self.random(rows * outF, -1...1, &g)
        let prefillX = Self.random(rows * inF, -1...1, &g), prefillW = Self.random(outF * inF, -1...1, &g)
        let xt = Tensor(shape: [rows, inF], values: x), wt = Tensor(shape: [outF, inF], values: w), y = Tensor(zeros: [rows, outF])
        GEMM.linear(xt.pointer, rows: rows, inFeatures: inF, weight: wt.pointer, outFeatures: outF, into: y.pointer)
        Self.expectClose(y.array, Reference.linear(Self.doubles(x), Self.doubles(w), rows: rows, inFeatures: inF, outFeatures: outF), 1e-6, "linear forward")
        let dX = Tensor(shape: [rows, inF], values: prefillX), dW = Tensor(shape: [outF, inF], values: prefillW), dYt = Tensor(shape: [rows, outF], values: dY)
        GEMM.linearBackward(dYt.pointer, rows: rows, outFeatures: outF, x: xt.pointer, inFeatures: inF, weight: wt.pointer, dX: dX.pointer, dWeight: dW.pointer)
        let f: ([Double], [Double]) -> Double = { Reference.dot(dY, Reference.linear($0, $1, rows: rows, inFeatures: inF, outFeatures: outF)) }
        Self.expectClose(Self.added(dX, prefillX), Reference.gradient(of: { f($0, Self.doubles(w)) }, at: Self.doubles(x)), 1e-5, "linear dX")
        Self.expectClose(Self.added(dW, prefillW), Reference.gradient(of: { f(Self.doubles(x), $0) }, at: Self.doubles(w)), 1e-5, "linear dWeight")
    }

    // MARK: Cross-entropy

    @Test(arguments: [Float(0), 0.1]) func crossEntropy(labelSmoothing: Float) {
        let rows = 5, vocab = 23
        let targets: [Int32] = [3, -100, 0, 22, 7]
        var g = SeededGenerator(seed: 17)
        var logits = Self.random(rows * vocab, -4...4, &g)
        logits[0 * vocab + 3] = 6  // row 0 predicts its target; the others almost surely do not
        let logitsT = Tensor(shape: [rows, vocab], values: logits)
        let reference: ([Double]) -> Double = {
            Reference.crossEntropy($0, targets: targets.map(Int.init), vocab: vocab, labelSmoothing: Double(labelSmoothing))
        }
        let lse = Tensor(zeros: [rows])
        let (sum, tokens, correct) = targets.withUnsafeBufferPointer {
            CrossEntropy.forward(
                logits: logitsT.pointer, rows: rows, vocab: vocab, targets: $0.baseAddress!, labelSmoothing: labelSmoothing,
                logSumExp: lse.pointer)
        }
        #expect(tokens == 4)
        var hits = 0
        for (r, y) in targets.enumerated() where y != -100 {
            let row = logits[r * vocab ..< (r + 1) * vocab]
            if row.firstIndex(of: row.max()!)! - r * vocab == Int(y) { hits += 1 }
        }
        #expect(correct == hits && hits >= 1)
        let expectedLoss = reference(Self.doubles(logits))
        #expect(abs(sum / Double(tokens) - expectedLoss) <= 1e-6 * expectedLoss, "loss \(sum / Double(tokens)) vs \(expectedLoss)")

        let expected = Reference.gradient(of: reference, at: Self.doubles(logits)).map { $0 * 0.5 }  // scale 0.5
        let dLogits = Tensor(zeros: [rows, vocab])
        targets.withUnsafeBufferPointer {
            CrossEntropy.backward(
                logits: logitsT.pointer, rows: rows, vocab: vocab, targets: $0.baseAddress!, labelSmoothing: labelSmoothing,
                scale: 0.5 / Float(tokens), into: dLogits.pointer)
        }
        Self.expectClose(dLogits.array, expected, 1e-5, "cross-entropy backward ε=\(labelSmoothing)")
        #expect(dLogits.array[vocab ..< 2 * vocab].allSatisfy { $0 == 0 }, "an ignored row got a gradient")
        // In place over the logits, reusing the forward's log Σ exp.
        targets.withUnsafeBufferPointer {
            CrossEntropy.backward(
                logits: logitsT.pointer, rows: rows, vocab: vocab, targets: $0.baseAddress!, labelSmoothing: labelSmoothing,
                scale: 0.5 / Float(tokens), logSumExp: lse.pointer, into: logitsT.pointer)
        }
        #expect(logitsT.array == dLogits.array)
    }

    // MARK: Dropout

    @Test func dropoutMasks() {
        let n = 200_000
        let a = Tensor(zeros: [n]), b = Tensor(zeros: [n]), c = Tensor(zeros: [n])
        var g1 = SeededGenerator(seed: 42), g2 = SeededGenerator(seed: 42), g3 = SeededGenerator(seed: 43)
        Dropout.makeMask(rate: 0.25, count: n, generator: &g1, into: a.pointer)
        Dropout.makeMask(rate: 0.25, count: n, generator: &g2, into: b.pointer)
        Dropout.makeMask(rate: 0.25, count: n, generator: &g3, into: c.pointer)
        #expect(a.array == b.array, "same seed, different mask")
        #expect(a.array != c.array, "different seeds, same mask")
        let mask = a.array
        let zeros = mask.filter { $0 == 0 }.count
        #expect(mask.allSatisfy { $0 == 0 || $0 == 1 / Float(0.75) }, "mask values other than 0 and 1/(1 − p)")
        #expect(abs(Double(zeros) / Double(n) - 0.25) < 0.005, "dropped fraction \(Double(zeros) / Double(n))")
        let mean = mask.reduce(0.0) { $0 + Double($1) } / Double(n)
        #expect(abs(mean - 1) < 0.01, "mean scale \(mean)")

        // p = 0: identity, and the generator is not consumed; p = 1: zeros.
        var g4 = SeededGenerator(seed: 5), g5 = SeededGenerator(seed: 5)
        let x = Tensor(shape: [37], values: (0..<37).map { Float($0) - 18.5 })
        let y = x.copy(), m = Tensor(zeros: [37])
        Dropout.forward(y.pointer, 37, rate: 0, generator: &g4, mask: m.pointer)
        #expect(y.array == x.array && m.array.allSatisfy { $0 == 1 })
        #expect(g4.next() == g5.next())
        Dropout.forward(y.pointer, 37, rate: 1, generator: &g4, mask: m.pointer)
        #expect(y.array.allSatisfy { $0 == 0 })
    }

    /// The backward applies the mask the forward drew: central differences of x ↦ dropout(x) replayed with
    /// the same seed.
    @Test func dropoutBackward() {
        let n = 37, rate: Float = 0.4
        var g = SeededGenerator(seed: 8)
        let x = Self.random(n, -2...2, &g), dY = Self.random(n, -1...1, &g), prefill = Self.random(n, -1...1, &g)
        func forward(_ input: [Float]) -> (y: [Float], mask: [Float]) {
            var replay = SeededGenerator(seed: 1234)
            let t = Tensor(shape: [n], values: input), m = Tensor(zeros: [n])
            Dropout.forward(t.pointer, n, rate: rate, generator: &replay, mask: m.pointer)
            return (t.array, m.array)
        }
        let (y, mask) = forward(x)
        Self.expectClose(y, zip(x, mask).map { Double($0) * Double($1) }, 1e-7, "dropout forward")
        #expect(mask.contains(0) && mask.contains(1 / (1 - rate)))
        let dX = Tensor(shape: [n], values: prefill)
        let dYt = Tensor(shape: [n], values: dY), maskT = Tensor(shape: [n], values: mask)
        Dropout.backward(dYt.pointer, mask: maskT.pointer, into: dX.pointer, n)
        let expected = Reference.gradient(of: { Reference.dot(dY, Self.doubles(forward($0.map(Float.init)).y)) }, at: Self.doubles(x), step: 1e-3)
        Self.expectClose(Self.added(dX, prefill), expected, 1e-4, "dropout backward")
    }
}
