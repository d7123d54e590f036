import CSentencePiece
import Foundation

/// The T5 tokenizer: SentencePiece pieces plus T5's conventions, giving exactly the ids of
/// Hugging Face transformers 5's `T5Tokenizer.from_pretrained(dir)` and decoding like its
/// `decode(ids, skip_special_tokens=True)`.
///
/// Ids: `<pad>` 0, `</s>` 1, `<unk>` 2, then the rest of `spiece.model`, then 100 sentinels,
/// `<extra_id_N>` with id `size - 1 - N`. `encode` appends `</s>`.
///
/// transformers 5 does not run SentencePiece: it converts `spiece.model` into a `tokenizers`
/// pipeline (transformers/models/t5/tokenization_t5.py `T5Tokenizer.__init__`,
/// convert_slow_tokenizer.py `T5Converter.convert_from_spm`), and that pipeline differs from
/// `SentencePieceProcessor::Encode` in several places. SentencePiece loads and validates the
/// model and supplies the vocabulary; this type reproduces the pipeline step by step:
/// 1. Added tokens are cut out of the raw text first (`<pad>`, `</s>`, `<unk>`, every
///    `<extra_id_N>`, other control and user-defined pieces; leftmost-longest match, no
///    stripping, not normalized). A sentinel written in the text is one id, and the text on each
///    side is tokenized on its own, each word with its own "▁" (`"a<extra_id_0>b"` gives
///    `▁a <extra_id_0> ▁b`); spaces next to a sentinel disappear with the word split.
/// 2. Each remaining chunk is normalized by the charsmap the `tokenizers` way
///    (`PrecompiledNormalizer`), which differs from SentencePiece's normalizer for some
///    combining sequences.
/// 3. `WhitespaceSplit`: the normalized chunk is split on Unicode White_Space (Rust
///    `char::is_whitespace`), which includes U+0085, left alone by SentencePiece. Runs of
///    whitespace, leading and trailing whitespace vanish; whitespace-only text gives no ids.
/// 4. `Metaspace(replacement="▁", prepend_scheme="always", split=True)`: each word gets a
///    leading "▁" and is cut before every further "▁".
/// 5. `Unigram(vocab, unk_id=2, byte_fallback=False)` on each piece (`Unigram`), where the
///    vocab holds every piece of `spiece.model` with its score (control and unknown pieces
///    included) plus the 100 sentinels with score 0; consecutive unknowns fuse into one `<unk>`.
/// 6. `TemplateProcessing(single=["$A", "</s>"])` appends `</s>`.
public struct T5Tokenizer: Tokenizer {
    /// `<pad>`, also the decoder start token.
    public static let padID = 0
    /// `</s>`, appended by `encode`.
    public static let eosID = 1
    /// `<unk>`, for characters no piece covers.
    public static let unkID = 2
    /// The number of sentinels T5 adds (`extra_ids=100`).
    static let sentinelCount = 100

    private let storage: Storage

    /// Loads `spiece.model`.
    ///
    /// - Throws: `.missingFile` if there is no such file, `.unreadableFile` if it cannot be read,
    ///   `.tokenizer` if it is not a SentencePiece model with T5's layout
    ///   (`<pad>`, `</s>`, `<unk>` at ids 0, 1, 2).
    public init(modelFile: URL) throws(T5Error) {
        storage = try Storage(modelFile: modelFile)
    }

    /// Loads transformers' fast-tokenizer file, `tokenizer.json`, as `T5TokenizerFast` saves it (a Unigram
    /// model with T5's normalizer, pre-tokenizer and template): the same ids as from `spiece.model`.
    ///
    /// - Throws: `.invalidConfig` for malformed JSON, `.tokenizer` naming the field when the file is not
    ///   that pipeline (another model type, normalizer or pre-tokenizer, byte fallback, ...).
    public init(tokenizerJSON url: URL) throws(T5Error) {
        storage = try Storage(tokenizerJSON: url)
    }

    /// Loads the bytes of a `spiece.model` held in memory; `path` names it in errors (the fuzzer uses it).
    init(modelBytes: [UInt8], path: String) throws(T5Error) {
        storage = try Storage(bytes: modelBytes, path: path)
    }

    /// The number of pieces in `spiece.model`.
    public var sentencePieceSize: Int { storage.pieces.count }

    /// The tokenizer's vocabulary size, `sentencePieceSize + 100` sentinels (`len(tokenizer)`).
    /// A model's `vocab_size` may be larger (t5-small: 32128 vs 32100).
    public var size: Int { storage.pieces.count + Self.sentinelCount }

    /// The 100 sentinels.
    public var sentinelCount: Int { Self.sentinelCount }

    /// The pieces of `spiece.model` after `<pad>`, `</s>`, `<unk>` (control and unused ones included).
    public var ordinaryIDs: Range<Int> { Self.unkID + 1..<storage.pieces.count }

    public var summary: String {
        "SentencePiece (\(storage.files.keys.first ?? "spiece.model")): \(sentencePieceSize) pieces + \(Self.sentinelCount) sentinels"
    }

    public var files: [String: Data] { storage.files }

    /// The id of sentinel `<extra_id_n>`, `size - 1 - n`, for `n` in `0..<100`.
    public func sentinelID(_ n: Int) -> Int {
        precondition((0..<Self.sentinelCount).contains(n), "sentinel index \(n) outside 0..<\(Self.sentinelCount)")
        return size - 1 - n
    }

    /// The piece of `id` (`convert_ids_to_tokens`): `"</s>"`, `"<extra_id_3>"`, `"▁the"`...;
    /// nil for ids outside `0..<size`.
    public func piece(for id: Int) -> String? {
        if id >= 0, id < storage.pieces.count {
            return storage.pieces[id]
        }
        if id >= storage.pieces.count, id < size {
            return "<extra_id_\(size - 1 - id)>"
        }
        return nil
    }

    /// The pieces of `ids` (`convert_ids_to_tokens`), one per id; an id outside `0..<size`
    /// (where transformers gives `None`) gives the empty string.
    public func pieces(_ ids: [Int]) -> [String] {
        ids.map { piece(for: $0) ?? "" }
    }

    /// The ids of `text`, as `T5Tokenizer(text).input_ids`: ends with `</s>` unless `appendEOS`
    /// is false. The empty string and whitespace-only text give just `[</s>]`.
    public func encode(_ text: String, appendEOS: Bool) -> [Int] {
        var ids: [Int] = []
        let bytes = Array(text.utf8)
        var chunkStart = 0
        var position = 0
        while position < bytes.count {
            if let (length, id) = storage.addedTokens.longestMatch(in: bytes, at: position) {
                if chunkStart < position {
                    storage.encodeChunk(bytes[chunkStart..<position], into: &ids)
                }
                ids.append(id)
                position += length
                chunkStart = position
            } else {
                position += 1
            }
        }
        if chunkStart < bytes.count {
            storage.encodeChunk(bytes[chunkStart...], into: &ids)
        }
        if appendEOS {
            ids.append(Self.eosID)
        }
        return ids
    }

    /// The text of `ids`, as `decode(ids, skip_special_tokens=True)`.
    ///
    /// Skips `<pad>`, `</s>`, `<unk>`, the sentinels and other control pieces (transformers'
    /// special tokens), and ids outside `0..<size`, which `tokenizers` drops silently (a model's
    /// vocabulary may exceed the tokenizer's). Then the `Metaspace` decoder
    /// (prepend_scheme="always"): in the first remaining piece every "▁" is removed, in the
    /// others each "▁" becomes a space; the pieces are concatenated. No
    /// `clean_up_tokenization_spaces` (False for T5 in transformers 5).
    public func decode(_ ids: [Int]) -> String {
        var output = ""
        var isFirst = true
        for id in ids {
            guard let piece = piece(for: id), !storage.isSpecial(id) else { continue }
            for scalar in piece.unicodeScalars {
                if scalar == Storage.metaspace {
                    if !isFirst { output.unicodeScalars.append(" ") }
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
            isFirst = false
        }
        return output
    }
}

extension T5Tokenizer {
    /// The tables derived from the model; immutable, so safely shared between threads.
    final class Storage: Sendable {
        /// "▁" (U+2581), SentencePiece's and Metaspace's word-boundary mark.
        static let metaspace: Unicode.Scalar = "\u{2581}"

        /// Piece text by id, for ids below `sentencePieceSize`.
        let pieces: [String]
        /// The file the tokenizer was read from (`spiece.model` or `tokenizer.json`), written again with a
        /// trained model.
        let files: [String: Data]
        /// Tokens cut out of the raw text before normalization.
        let addedTokens: AddedTokenMatcher
        /// Ids skipped by `decode` below `sentencePieceSize` (`<pad>`, `</s>`, `<unk>`, control pieces).
        private let specialPieceIDs: Set<Int>
        private let normalizer: PrecompiledNormalizer?
        private let unigram: Unigram

        convenience init(modelFile: URL) throws(T5Error) {
            let path = modelFile.path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw .missingFile(path: path)
            }
            if isDirectory.boolValue {
                throw .unreadableFile(path: path, reason: "is a directory")
            }
            let bytes: [UInt8]
            do {
                bytes = Array(try Data(contentsOf: modelFile))
            } catch {
                throw .unreadableFile(path: path, reason: error.localizedDescription)
            }
            try self.init(bytes: bytes, path: path)
        }

        init(bytes: [UInt8], path: String) throws(T5Error) {
            // SentencePiece loads and validates the model and is the source of the vocabulary;
            // the wire reader adds the charsmap and the user-defined flag it does not expose.
            let processor: SentencePieceProcessor
            do {
                processor = try SentencePieceProcessor(serializedModel: bytes)
            } catch {
                throw .tokenizer(path: path, reason: "SentencePiece cannot load the model: \(error.reason)")
            }
            let model: SentencePieceModel
            do {
                model = try SentencePieceModel(bytes: bytes)
            } catch {
                throw .tokenizer(path: path, reason: "not a SentencePiece model: \(error.reason)")
            }
            guard model.pieces.count == processor.pieceCount else {
                throw .tokenizer(path: path, reason: "SentencePiece reports \(processor.pieceCount) pieces, the file holds \(model.pieces.count)")
            }
            for (id, piece) in model.pieces.enumerated() {
                let loaded = processor.piece(id)
                let sameKind = switch piece.type {
                case .normal, .userDefined: loaded?.kind == CSP_PIECE_NORMAL
                case .unknown: loaded?.kind == CSP_PIECE_UNKNOWN
                case .control: loaded?.kind == CSP_PIECE_CONTROL
                case .unused: loaded?.kind == CSP_PIECE_UNUSED
                case .byte: loaded?.kind == CSP_PIECE_BYTE
                }
                guard let loaded, loaded.text.elementsEqual(piece.text.utf8),
                      loaded.score.bitPattern == piece.score.bitPattern, sameKind else {
                    throw .tokenizer(path: path, reason: "piece \(id) differs between SentencePiece and the file")
                }
            }

            // T5Tokenizer hard-codes unk_id=2 and finds "<pad>" and "</s>" by name; the static
            // padID/eosID/unkID are only right for models laid out that way.
            guard model.pieces.count >= 3,
                  model.pieces[0].text == "<pad>",
                  model.pieces[1].text == "</s>",
                  model.pieces[2].text == "<unk>", model.pieces[2].type == .unknown
            else {
                throw .tokenizer(path: path, reason: "expected T5's layout: <pad>, </s>, <unk> at ids 0, 1, 2")
            }
            if let clash = model.pieces.first(where: { $0.text.hasPrefix("<extra_id_") }) {
                throw .tokenizer(path: path, reason: "spiece.model already contains \(clash.text); T5 adds the sentinels itself")
            }
            do {
                normalizer = model.precompiledCharsmap.isEmpty
                    ? nil : try PrecompiledNormalizer(charsmap: model.precompiledCharsmap)
            } catch {
                throw .tokenizer(path: path, reason: error.reason)
            }

            pieces = model.pieces.map(\.text)
            files = ["spiece.model": Data(bytes)]
            let size = model.pieces.count + T5Tokenizer.sentinelCount
            func sentinel(_ id: Int) -> String { "<extra_id_\(size - 1 - id)>" }

            // transformers' Unigram vocabulary (T5Converter.convert_from_spm): every piece with
            // its score whatever its type, then <extra_id_99>...<extra_id_0> with score 0. All of
            // them can match inside a word: "＜/s＞" normalizes to "</s>" and becomes id 1.
            var vocabulary = model.pieces.map { (text: $0.text, score: Double($0.score)) }
            for id in model.pieces.count..<size {
                vocabulary.append((sentinel(id), 0))
            }
            unigram = Unigram(vocabulary: vocabulary, unknownID: T5Tokenizer.unkID)

            // Added tokens, as SentencePieceExtractor.extract and T5Tokenizer.__init__ make them:
            // the named pad/eos/unk tokens and every control piece (special), user-defined
            // pieces (not special: matched in the text, kept by decode) and the sentinels (special).
            var added: [(String, Int)] = []
            var special: Set<Int> = []
            for (id, piece) in model.pieces.enumerated() {
                if id <= T5Tokenizer.unkID || piece.type == .control {
                    added.append((piece.text, id))
                    special.insert(id)
                } else if piece.type == .userDefined {
                    added.append((piece.text, id))
                }
            }
            for id in model.pieces.count..<size {
                added.append((sentinel(id), id))
            }
            addedTokens = AddedTokenMatcher(added)
            specialPieceIDs = special
        }

        /// The pipeline of a `tokenizer.json` (`FastTokenizerFile`): the same tables as from spiece.model.
        init(tokenizerJSON url: URL) throws(T5Error) {
            let file = try FastTokenizerFile(url: url)
            pieces = file.vocabulary[..<file.pieceCount].map(\.text)
            files = ["tokenizer.json": Data(file.bytes)]
            normalizer = file.normalizer
            unigram = Unigram(vocabulary: file.vocabulary, unknownID: T5Tokenizer.unkID)
            addedTokens = AddedTokenMatcher(file.addedTokens)
            specialPieceIDs = file.specialPieceIDs
        }

        func isSpecial(_ id: Int) -> Bool {
            id >= pieces.count || specialPieceIDs.contains(id)
        }

        /// Steps 2-5 of the pipeline for text between added tokens.
        func encodeChunk(_ bytes: ArraySlice<UInt8>, into ids: inout [Int]) {
            let text = String(decoding: bytes, as: UTF8.self)
            let normalized = normalizer?.normalize(text[...]) ?? text
            // WhitespaceSplit: `normalized.split(char::is_whitespace, Removed)`.
            for word in normalized.unicodeScalars.split(whereSeparator: Self.isWhitespace) {
                // Metaspace: prepend "▁" unless the word starts with one, then split before
                // every "▁" (SplitDelimiterBehavior::MergedWithNext).
                var piece = String.UnicodeScalarView()
                if word.first != Self.metaspace {
                    piece.append(Self.metaspace)
                }
                for scalar in word {
                    if scalar == Self.metaspace, !piece.isEmpty {
                        unigram.encode(Array(String(piece).utf8), into: &ids)
                        piece = String.UnicodeScalarView()
                    }
                    piece.append(scalar)
                }
                unigram.encode(Array(String(piece).utf8), into: &ids)
            }
        }

        /// Unicode White_Space, the set of Rust's `char::is_whitespace` used by `WhitespaceSplit`.
        static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
            switch scalar.value {
            case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
                return true
            default:
                return false
            }
        }
    }
}
