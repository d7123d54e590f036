import Foundation

/// T5's relative position bias (T5Attention.compute_bias in transformers).
///
/// A score between query position i and key position j gets `table[bucket(j − i), head]`, where the
/// bucket is exact for small distances and logarithmic up to `maxDistance`. The table lives in block 0 of a
/// stack and every block of that stack reuses the same bias. Encoder buckets are bidirectional; decoder
/// buckets are causal (only j ≤ i occurs).
///
/// Because every distance at or beyond `maxDistance` falls in the last bucket (proved below), the bias is
/// a function of the clamped distance only: it is expanded once per model into `values`, indexed by
/// `(head, clamp(j − i, −maxDistance, maxDistance) + maxDistance)`, and attention reads it with one add.
struct RelativePositionBias: Sendable {
    let heads: Int
    /// Distances are clamped to ±maxDistance (at least the bucket count, so the exact region always fits).
    let maxDistance: Int
    /// (H, 2·maxDistance + 1)
    let values: Tensor

    var width: Int { 2 * maxDistance + 1 }

    /// Distances are expanded up to this many positions at most. A checkpoint's `max_distance` is 128 in
    /// every published T5; a config naming 2^31 would otherwise allocate 2^32 floats per head here.
    static let expansionLimit = 1 << 16

    /// The longest sequence whose distances all fall in the expanded table: unlimited when the table reaches
    /// `max_distance` (every longer distance shares the last bucket), else the expansion limit + 1.
    var supportedLength: Int { exact ? Int.max : maxDistance + 1 }
    /// Whether the expansion covers every distance below `max_distance`.
    let exact: Bool

    /// The bias of one stack of `config`'s model: bidirectional for the encoder, causal for the decoder.
    init(config c: T5Config, table: UnsafePointer<Float>, bidirectional: Bool) {
        self.init(
            table: table, heads: c.numHeads, numBuckets: c.relativeAttentionNumBuckets,
            maxDistance: c.relativeAttentionMaxDistance, bidirectional: bidirectional)
    }

    /// The bias every block of a stack reads: each table expanded once, and blocks without their own table
    /// sharing the expansion of the block they read from (`relativeBiasOwners`).
    static func perBlock(_ blocks: [T5Block], config c: T5Config, bidirectional: Bool) -> [RelativePositionBias] {
        var expanded = [Int: RelativePositionBias]()
        return blocks.relativeBiasOwners.map { owner in
            if let bias = expanded[owner] { return bias }
            guard let table = blocks[owner].relativeBias else { preconditionFailure("block \(owner) has no relative bias table") }
            let bias = RelativePositionBias(config: c, table: table.pointer, bidirectional: bidirectional)
            expanded[owner] = bias
            return bias
        }
    }

    /// Expands the learned `table` (numBuckets, H) into per-distance biases.
    init(table: UnsafePointer<Float>, heads: Int, numBuckets: Int, maxDistance: Int, bidirectional: Bool) {
        let clamp = min(max(maxDistance, numBuckets), Self.expansionLimit)
        self.heads = heads
        self.maxDistance = clamp
        exact = max(maxDistance, numBuckets) <= Self.expansionLimit
        let width = 2 * clamp + 1
        let values = Tensor(zeros: [heads, width])
        for d in -clamp...clamp {
            let b = Self.bucket(relativePosition: d, bidirectional: bidirectional, numBuckets: numBuckets, maxDistance: maxDistance)
            for h in 0..<heads { values.pointer[h * width + d + clamp] = table[b * heads + h] }
        }
        self.values = values
    }

    /// The bucket of `relativePosition = key − query`, computed as transformers'
    /// `T5Attention._relative_position_bucket` does, including its float32 logarithm and truncation:
    ///
    ///     max_exact + int(log(n / max_exact) / log(max_distance / max_exact) · (num_buckets − max_exact))
    ///
    /// For n ≥ max_distance the quotient of logs is ≥ 1 (up to one rounding), so the value is
    /// ≥ num_buckets − 1 and clamps to the last bucket: distances beyond max_distance share it.
    static func bucket(relativePosition: Int, bidirectional: Bool, numBuckets: Int, maxDistance: Int) -> Int {
        var buckets = numBuckets
        var result = 0
        var n: Int
        if bidirectional {
            buckets /= 2
            if relativePosition > 0 { result += buckets }
            n = abs(relativePosition)
        } else {
            n = -min(relativePosition, 0)
        }
        let maxExact = buckets / 2
        if n < maxExact { return result + n }
        // torch computes log(float32(n) / max_exact) in float32, divides by the Python double
        // log(max_distance / max_exact) cast to float32, multiplies by (num_buckets − max_exact) and truncates.
        let ratio = Float(n) / Float(maxExact)
        let denominator = Float(Foundation.log(Double(maxDistance) / Double(maxExact)))
        let scaled = Foundation.logf(ratio) / denominator * Float(buckets - maxExact)
        let large = min(maxExact + Int(scaled), buckets - 1)
        return result + large
    }

    /// Head `h`'s biases, centred: `center(h)[d]` is the bias of distance d for |d| ≤ maxDistance.
    @inline(__always)
    func center(_ h: Int) -> UnsafePointer<Float> {
        UnsafePointer(values.pointer + h * width + maxDistance)
    }
}

extension RelativePositionBias {
    /// Backward of the expansion in `init`: every clamped distance's gradient goes back to the bucket it was
    /// read from, dTable[bucket(d), h] += dValues[h, d + clamp] (the gradient of nn.Embedding's lookup in
    /// T5Attention.compute_bias, summed over the query/key pairs that share a bucket).
    ///
    /// - dValues: (H, 2·clamp + 1) laid out as `values`, with clamp = min(max(maxDistance, numBuckets), expansionLimit) as in `init`.
    /// - dTable: (numBuckets, H), accumulated.
    static func backward(
        dValues: UnsafePointer<Float>, heads: Int, numBuckets: Int, maxDistance: Int, bidirectional: Bool,
        into dTable: UnsafeMutablePointer<Float>
    ) {
        let clamp = min(max(maxDistance, numBuckets), expansionLimit)
        let width = 2 * clamp + 1
        for d in -clamp...clamp {
            let b = bucket(relativePosition: d, bidirectional: bidirectional, numBuckets: numBuckets, maxDistance: maxDistance)
            for h in 0..<heads { dTable[b * heads + h] += dValues[h * width + d + clamp] }
        }
    }

    /// Head `h`'s gradient row in a (H, width) buffer laid out as `values`, centred like `center(h)`.
    @inline(__always)
    func center(_ h: Int, in gradient: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        gradient + h * width + maxDistance
    }
}
