import Foundation

/// xoshiro256** seeded through SplitMix64: a small, fast generator whose stream depends only on the seed,
/// so `--seed S` reproduces a sampled output on every platform.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextUnit() -> Float {
        Float(next() >> 40) * 0x1p-24
    }
}

/// The sampling warpers (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper) and the categorical draw.
/// Holds its sort buffer so that a step allocates nothing.
struct Sampler {
    let temperature: Float
    let topK: Int
    let topP: Float
    var generator: SeededGenerator
    private var order: [Int32] = []

    init(options: GenerationOptions, seed: UInt64) {
        temperature = options.temperature
        topK = options.topK
        topP = options.topP
        generator = SeededGenerator(seed: seed)
    }

    /// Applies temperature, top-k and top-p to `scores` (V) in place; filtered entries become −∞.
    mutating func warp(_ scores: UnsafeMutablePointer<Float>, _ v: Int) {
        if temperature != 1 {
            // scores / T, shifted by the maximum first: softmax (and so every warper and draw below) is
            // unchanged by the shift, and the largest score stays 0 instead of overflowing to +∞ when T is tiny
            // (1/T itself is +∞ below ~3e-39, so those temperatures divide).
            let top = Vector.max(scores, v)
            if top.isFinite {
                let inverse = 1 / temperature
                if inverse.isFinite {
                    for i in 0..<v { scores[i] = (scores[i] - top) * inverse }
                } else {
                    for i in 0..<v { scores[i] = (scores[i] - top) / temperature }
                }
            }
        }
        if topK > 0 && topK < v {
            // Keep every score ≥ the k-th largest (ties at the threshold survive, as in transformers).
            let threshold = kthLargest(scores, v, topK)
            for i in 0..<v where scores[i] < threshold { scores[i] = -.infinity }
        }
        if topP < 1 {
            // Sort the surviving tokens ascending; drop those whose cumulative probability from the bottom is
            // ≤ 1 − top_p, always keeping the most likely one.
            order.removeAll(keepingCapacity: true)
            for i in 0..<v where scores[i] > -.infinity { order.append(Int32(i)) }
            order.sort { scores[Int($0)] < scores[Int($1)] || (scores[Int($0)] == scores[Int($1)] && $0 < $1) }
            let lse = Softmax.logSumExp(scores, v)
            var cumulative: Float = 0
            for (rank, i) in order.enumerated() where rank < order.count - 1 {
                cumulative += expf(scores[Int(i)] - lse)
                if cumulative <= 1 - topP { scores[Int(i)] = -.infinity } else { break }
            }
        }
    }

    /// Draws a token from softmax(scores), given its normalizer `logSumExp`.
    mutating func draw(_ scores: UnsafePointer<Float>, _ v: Int, logSumExp lse: Float) -> Int {
        let u = generator.nextUnit()
        var cumulative: Float = 0
        var last = 0
        for i in 0..<v where scores[i] > -.infinity {
            cumulative += expf(scores[i] - lse)
            last = i
            if u < cumulative { return i }
        }
        return last
    }

    private mutating func kthLargest(_ scores: UnsafePointer<Float>, _ v: Int, _ k: Int) -> Float {
        order.removeAll(keepingCapacity: true)
        for i in 0..<v { order.append(Int32(i)) }
        // Partial selection would do; a full sort of indices is simple and only runs when sampling.
        order.sort { scores[Int($0)] > scores[Int($1)] }
        return scores[Int(order[k - 1])]
    }
}
