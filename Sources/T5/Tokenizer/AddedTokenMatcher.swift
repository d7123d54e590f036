/// Finds added tokens in raw UTF-8, leftmost-longest like `tokenizers`' AddedVocabulary
/// (aho-corasick, MatchKind::LeftmostLongest).
struct AddedTokenMatcher: Sendable {
    /// Candidates by first byte, longest first.
    private let byFirstByte: [UInt8: [(bytes: [UInt8], id: Int)]]

    init(_ tokens: [(String, Int)]) {
        var table: [UInt8: [(bytes: [UInt8], id: Int)]] = [:]
        for (text, id) in tokens {
            let bytes = Array(text.utf8)
            guard let first = bytes.first else { continue }
            table[first, default: []].append((bytes, id))
        }
        byFirstByte = table.mapValues { $0.sorted { $0.bytes.count > $1.bytes.count } }
    }

    /// The longest token starting at `position`, as (byte length, id).
    func longestMatch(in text: [UInt8], at position: Int) -> (Int, Int)? {
        guard let candidates = byFirstByte[text[position]] else { return nil }
        for candidate in candidates where text.count - position >= candidate.bytes.count {
            if text[position..<(position + candidate.bytes.count)].elementsEqual(candidate.bytes) {
                return (candidate.bytes.count, candidate.id)
            }
        }
        return nil
    }
}
