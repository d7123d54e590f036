/// The unigram Viterbi search of transformers' T5Tokenizer: a port of the `tokenizers`
/// library's `Unigram::encode_optimized` with `fuse_unk` and `Unigram::tokenize`
/// (tokenizers/src/models/unigram/model.rs).
///
/// Why not SentencePiece's `Encode`: Debian's libsentencepiece 0.1.97 runs the same search
/// with `float` path scores, and between paths of exactly equal score, such as "0" + "00" and
/// "00" + "0" for "a000", it picks one or the other depending on rounding (its results are
/// reproduced by a simulation that compares the unrounded candidate with the stored `float`
/// best, as the `double`-typed score of `unigram_model.cc` makes it do). `tokenizers` adds the
/// `f32` scores in `f64`, where such sums are exact, and keeps the first candidate found. Run on
/// the same pipeline, SentencePiece's search disagreed with transformers on 5 of 15,000 random
/// strings (over five test models); this port agrees on all of them. Its vocabulary also
/// differs from SentencePiece's: every piece is matchable, including control, unknown and
/// unused ones and the sentinels (see `T5Tokenizer.Storage`).
struct Unigram: Sendable {
    /// Score of each id, widened from the model's `Float` like the Python floats transformers
    /// passes to `tokenizers`.
    private let scores: [Double]
    /// Byte trie of the vocabulary: `transitions[node << 8 | byte]` is the child node.
    private let transitions: [Int: Int32]
    /// The id whose text ends at each node, or -1.
    private let terminals: [Int32]
    private let unknownID: Int
    /// `min_score - K_UNK_PENALTY` (10), the minimum over the whole vocabulary.
    private let unknownScore: Double

    /// - Parameter vocabulary: the text and score of every id, in id order. A text listed
    ///   twice resolves to its last id, like the `token_to_ids` map of `tokenizers`.
    init(vocabulary: [(text: String, score: Double)], unknownID: Int) {
        var transitions: [Int: Int32] = [:]
        var terminals: [Int32] = [-1]
        for (id, entry) in vocabulary.enumerated() {
            var node = 0
            for byte in entry.text.utf8 {
                let key = node << 8 | Int(byte)
                if let child = transitions[key] {
                    node = Int(child)
                } else {
                    let child = terminals.count
                    terminals.append(-1)
                    transitions[key] = Int32(child)
                    node = child
                }
            }
            terminals[node] = Int32(id)
        }
        self.transitions = transitions
        self.terminals = terminals
        self.scores = vocabulary.map(\.score)
        self.unknownID = unknownID
        self.unknownScore = (vocabulary.map(\.score).min() ?? 0) - 10
    }

    /// Appends the ids of one pre-token (valid UTF-8, as `"▁word"`) to `ids`.
    func encode(_ word: [UInt8], into ids: inout [Int]) {
        let count = word.count
        guard count > 0 else { return }
        // best_path_ends_at: for each byte position, the best path ending there.
        var bestScore = [Double](repeating: 0, count: count + 1)
        var bestStart = [Int](repeating: -1, count: count + 1)
        var bestID = [Int](repeating: -1, count: count + 1)
        var start = 0
        while start < count {
            let scoreHere = bestScore[start]
            let characterLength = min(Self.utf8Length(leadByte: word[start]), count - start)
            var hasSingleCharacterPiece = false
            var node = 0
            var end = start
            while end < count, let child = transitions[node << 8 | Int(word[end])] {
                node = Int(child)
                end += 1
                let id = Int(terminals[node])
                guard id >= 0 else { continue }
                let candidate = scores[id] + scoreHere
                if bestStart[end] == -1 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    bestStart[end] = start
                    bestID[end] = id
                }
                if end - start == characterLength {
                    hasSingleCharacterPiece = true
                }
            }
            if !hasSingleCharacterPiece {
                let target = start + characterLength
                let candidate = unknownScore + scoreHere
                if bestStart[target] == -1 || candidate > bestScore[target] {
                    bestScore[target] = candidate
                    bestStart[target] = start
                    bestID[target] = unknownID
                }
            }
            start += characterLength
        }

        // Backtrack. fuse_unk: consecutive nodes with the unknown id (unknown characters, or
        // the "<unk>" piece itself) become one token, whose text is then looked up again.
        var reversed: [Int] = []
        var end = count
        var unknownEnd: Int?
        while end > 0 {
            let start = bestStart[end]
            if bestID[end] == unknownID {
                if unknownEnd == nil { unknownEnd = end }
            } else {
                if let fusedEnd = unknownEnd {
                    reversed.append(lookup(word[end..<fusedEnd]) ?? unknownID)
                    unknownEnd = nil
                }
                reversed.append(bestID[end])
            }
            end = start
        }
        if let fusedEnd = unknownEnd {
            reversed.append(lookup(word[0..<fusedEnd]) ?? unknownID)
        }
        ids.append(contentsOf: reversed.reversed())
    }

    /// The id of exactly `text`, if it is in the vocabulary.
    private func lookup(_ text: ArraySlice<UInt8>) -> Int? {
        var node = 0
        for byte in text {
            guard let child = transitions[node << 8 | Int(byte)] else { return nil }
            node = Int(child)
        }
        let id = Int(terminals[node])
        return id >= 0 ? id : nil
    }

    private static func utf8Length(leadByte: UInt8) -> Int {
        switch leadByte {
        case 0xF0...: return 4
        case 0xE0...: return 3
        case 0xC0...: return 2
        default: return 1
        }
    }
}
