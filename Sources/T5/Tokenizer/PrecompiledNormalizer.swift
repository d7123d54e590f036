/// The text normalizer of transformers' T5Tokenizer: the `tokenizers` library's `Precompiled`
/// normalizer over the model's `precompiled_charsmap` (nmt_nfkc for T5).
///
/// Why not SentencePiece's own normalizer: both read the same charsmap (a double-array trie
/// from UTF-8 byte strings to replacements), but they apply it differently, and transformers'
/// ids follow `tokenizers` (tokenizers/src/normalizers/precompiled.rs + the spm_precompiled crate):
/// - The text is cut into extended grapheme clusters. A cluster shorter than 6 bytes is looked
///   up as a whole, and if any rule matches a *prefix* of it, the *shortest* matching rule's
///   replacement stands for the whole cluster; the rest of the cluster is dropped
///   (`"ﬁ\u{301}"` becomes `"fi"`, `"e\u{301}\u{301}"` becomes `"é"`).
/// - Otherwise (no match, or 6 bytes and longer) each scalar is looked up on its own, so rules
///   spanning several scalars never apply to long clusters (decomposed Hangul jamo stay
///   decomposed).
/// SentencePiece instead takes the longest matching rule at every byte position. Whitespace
/// collapsing and the dummy prefix are not part of this step (see `T5Tokenizer`).
struct PrecompiledNormalizer: Sendable {
    /// Darts-clone double-array units.
    private let units: [UInt32]
    /// NUL-separated replacement strings; trie values are offsets into it.
    private let pool: [UInt8]

    /// Parses a charsmap blob: a little-endian `UInt32` byte size of the trie, the trie units,
    /// then the replacement pool (as SentencePiece's normalizer and spm_precompiled read it).
    init(charsmap: [UInt8]) throws(SentencePieceModel.FormatError) {
        guard charsmap.count >= 4 else {
            throw SentencePieceModel.FormatError(reason: "precompiled_charsmap is truncated")
        }
        let trieSize = Int(charsmap[0]) | Int(charsmap[1]) << 8 | Int(charsmap[2]) << 16 | Int(charsmap[3]) << 24
        guard trieSize % 4 == 0, trieSize >= 4, trieSize <= charsmap.count - 4 else {
            throw SentencePieceModel.FormatError(reason: "precompiled_charsmap has a bad trie size \(trieSize)")
        }
        var units: [UInt32] = []
        units.reserveCapacity(trieSize / 4)
        for start in stride(from: 4, to: 4 + trieSize, by: 4) {
            units.append(UInt32(charsmap[start]) | UInt32(charsmap[start + 1]) << 8
                         | UInt32(charsmap[start + 2]) << 16 | UInt32(charsmap[start + 3]) << 24)
        }
        let pool = Array(charsmap[(4 + trieSize)...])
        // tokenizers refuses a pool that is not UTF-8 (PrecompiledError::NormalizedInvalidUtf8).
        guard String(validating: pool, as: UTF8.self) != nil else {
            throw SentencePieceModel.FormatError(reason: "precompiled_charsmap replacements are not UTF-8")
        }
        self.units = units
        self.pool = pool
    }

    /// The normalized form of `text`, exactly as `tokenizers`' `Precompiled.normalize` gives it.
    func normalize(_ text: Substring) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count)
        for cluster in text {
            let clusterBytes = Array(cluster.utf8)
            if clusterBytes.count < 6, let replacement = shortestPrefixReplacement(clusterBytes) {
                output += replacement
                continue
            }
            for scalar in cluster.unicodeScalars {
                let scalarBytes = Array(String(scalar).utf8)
                if let replacement = shortestPrefixReplacement(scalarBytes) {
                    output += replacement
                } else {
                    output += scalarBytes
                }
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The replacement of the shortest rule matching a prefix of `key` (darts-clone
    /// commonPrefixSearch, first result), or nil. Stops at a NUL byte, like the original.
    func shortestPrefixReplacement(_ key: [UInt8]) -> ArraySlice<UInt8>? {
        guard let first = units.first else { return nil }
        var node = Int(Self.offset(first))
        for byte in key {
            if byte == 0 { return nil }
            node ^= Int(byte)
            guard node < units.count else { return nil }
            let unit = units[node]
            if Self.label(unit) != UInt32(byte) { return nil }
            node ^= Int(Self.offset(unit))
            if Self.hasLeaf(unit) {
                guard node < units.count else { return nil }
                let start = Int(units[node] & 0x7FFF_FFFF)
                guard start <= pool.count else { return nil }
                let end = pool[start...].firstIndex(of: 0) ?? pool.count
                return pool[start..<end]
            }
        }
        return nil
    }

    private static func offset(_ unit: UInt32) -> UInt32 {
        (unit >> 10) << ((unit & (1 << 9)) >> 6)
    }

    private static func label(_ unit: UInt32) -> UInt32 {
        unit & (1 << 31 | 0xFF)
    }

    private static func hasLeaf(_ unit: UInt32) -> Bool {
        (unit >> 8) & 1 == 1
    }
}
