/// Corpus-level chrF (Popović 2015, "chrF: character n-gram F-score for automatic MT evaluation"), exactly as
/// sacrebleu 2.x's `CHRF()` computes it with its defaults (`sacrebleu/metrics/chrf.py`): character n-grams of
/// orders 1...6 over each segment with whitespace removed (Unicode code points, as Python's `str`), statistics
/// summed over the corpus, then per order precision and recall averaged over the orders where both the
/// hypotheses and the references have n-grams ("effective order"), and the F-score with β = 2, times 100.
public struct ChrF: Sendable {
    public static let order = 6
    public static let beta = 2.0

    /// [hypothesis n-grams, reference n-grams, matches] per order, summed over the segments added.
    private var statistics = [Int](repeating: 0, count: 3 * order)

    public init() {}

    /// Adds one hypothesis and its reference.
    public mutating func add(hypothesis: String, reference: String) {
        let h = Self.characters(hypothesis), r = Self.characters(reference)
        for n in 1...Self.order {
            let hypothesisGrams = Self.ngrams(h, n), referenceGrams = Self.ngrams(r, n)
            var matches = 0, hypothesisCount = 0
            for (gram, count) in hypothesisGrams {
                hypothesisCount += count
                if let inReference = referenceGrams[gram] { matches += min(count, inReference) }
            }
            // sacrebleu counts no hypothesis n-grams for an order the reference has none of.
            statistics[3 * (n - 1)] += referenceGrams.isEmpty ? 0 : hypothesisCount
            statistics[3 * (n - 1) + 1] += referenceGrams.values.reduce(0, +)
            statistics[3 * (n - 1) + 2] += matches
        }
    }

    /// The corpus score in [0, 100].
    public var score: Double {
        var precision = 0.0, recall = 0.0, effectiveOrder = 0
        for n in 0..<Self.order {
            let hypothesisCount = statistics[3 * n], referenceCount = statistics[3 * n + 1], matches = statistics[3 * n + 2]
            if hypothesisCount > 0 && referenceCount > 0 {
                precision += Double(matches) / Double(hypothesisCount)
                recall += Double(matches) / Double(referenceCount)
                effectiveOrder += 1
            }
        }
        guard effectiveOrder > 0 else { return 0 }
        precision /= Double(effectiveOrder)
        recall /= Double(effectiveOrder)
        guard precision + recall > 0 else { return 0 }
        let factor = Self.beta * Self.beta
        return 100 * (1 + factor) * precision * recall / (factor * precision + recall)
    }

    /// The code points of `text` without whitespace (Python's `"".join(line.split())`: `str.isspace` is
    /// Unicode's White_Space plus the separators U+001C...U+001F).
    static func characters(_ text: String) -> [UInt32] {
        text.unicodeScalars.filter { !$0.properties.isWhitespace && !(0x1C...0x1F).contains($0.value) }.map(\.value)
    }

    /// n-gram counts keyed by code points: Swift's `String` equality is canonical equivalence, Python's is
    /// code point by code point, and "é" precomposed or decomposed are different n-grams to sacrebleu.
    static func ngrams(_ characters: [UInt32], _ n: Int) -> [[UInt32]: Int] {
        var counts: [[UInt32]: Int] = [:]
        guard characters.count >= n else { return counts }
        for start in 0...(characters.count - n) {
            counts[Array(characters[start..<(start + n)]), default: 0] += 1
        }
        return counts
    }
}
