import Foundation

/// What a model needs from its tokenizer: ids for text, text for ids, and T5's conventions (`<pad>` 0,
/// `</s>` 1, `<unk>` 2, `<extra_id_N>` sentinels). Two implementations: `T5Tokenizer` (SentencePiece,
/// `spiece.model`; T5, T5 v1.1, Flan-T5, mT5, UMT5) and `ByT5Tokenizer` (UTF-8 bytes; ByT5).
/// `TokenizerDirectory.load` picks the one a model directory names.
public protocol Tokenizer: Sendable {
    /// The number of ids the tokenizer produces or names (`len(tokenizer)`). A model's `vocab_size` may
    /// be larger (t5-small: 32128 vs 32100); `decode` skips ids at or above it.
    var size: Int { get }
    /// The ids that stand for text (neither special nor sentinels), for benchmarks and random inputs.
    var ordinaryIDs: Range<Int> { get }
    /// The number of `<extra_id_N>` sentinels.
    var sentinelCount: Int { get }
    /// The id of `<extra_id_n>` for `n` in `0..<sentinelCount`.
    func sentinelID(_ n: Int) -> Int
    /// The token of `id` (`convert_ids_to_tokens`), nil for ids outside `0..<size`.
    func piece(for id: Int) -> String?
    /// The ids of `text` as the transformers tokenizer's `input_ids`: ending with `</s>` unless
    /// `appendEOS` is false.
    func encode(_ text: String, appendEOS: Bool) -> [Int]
    /// The text of `ids` as transformers' `decode(ids, skip_special_tokens=True)`.
    func decode(_ ids: [Int]) -> String
    /// One line for `t5 info`: which tokenizer, from which file, with how many tokens.
    var summary: String { get }
    /// The files (name → bytes) that give this tokenizer again in a model directory; checkpoints write them.
    var files: [String: Data] { get }
}

extension Tokenizer {
    /// `<pad>`, also T5's decoder start token.
    public var padID: Int { 0 }
    /// `</s>`, appended by `encode`.
    public var eosID: Int { 1 }
    /// `<unk>`.
    public var unkID: Int { 2 }

    /// The ids of `text`, ending with `</s>`.
    public func encode(_ text: String) -> [Int] { encode(text, appendEOS: true) }

    /// The tokens of `ids`, one per id; an id outside `0..<size` gives the empty string.
    public func pieces(_ ids: [Int]) -> [String] {
        ids.map { piece(for: $0) ?? "" }
    }
}
