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
/// pipeline (transformers/models/t5/tokenization_t5.py, convert_slow_tokenizer.py `T5Converter`),
/// and that pipeline differs from `SentencePieceProcessor.Encode` in several places. This type
/// reproduces the pipeline step by step and uses SentencePiece only for what both share, the
/// unigram Viterbi search over the pieces:
/// 1. Added tokens are cut out of the raw text first (`<pad>`, `</s>`, `<unk>`, every
///    `<extra_id_N>`, other control and user-defined pieces; leftmost-longest match, no
///    stripping, not normalized). A sentinel written in the text is one id, and the text on each
///    side is tokenized on its own, each word with its own "▁" (`"a<extra_id_0>b"` gives
///    `▁a <extra_id_0> ▁b`; spaces next to a sentinel disappear with the word split).
/// 2. Each remaining chunk is normalized by the charsmap the `tokenizers` way
///    (`PrecompiledNormalizer`), which differs from SentencePiece's normalizer for some
///    combining sequences.
/// 3. `WhitespaceSplit`: the normalized chunk is split on Unicode White_Space (Rust
///    `char::is_whitespace`), which includes U+0085, left alone by SentencePiece.
/// 4. `Metaspace(replacement="▁", prepend_scheme="always", split=True)`: each word gets a
///    leading "▁" and is cut before every further "▁".
/// 5. `Unigram(vocab, unk_id=2, byte_fallback=False)` on each piece, where the vocab holds every
///    piece of `spiece.model` with its score (control and unknown pieces included, score 0), plus
///    the 100 sentinels with score 0; consecutive unknowns fuse into one `<unk>`. SentencePiece
///    runs this search on a rewritten copy of the model (see `viterbiModel`).
/// 6. `TemplateProcessing(single=["$A", "</s>"])` appends `</s>`.
public struct T5Tokenizer: Sendable {
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

    /// The number of pieces in `spiece.model`.
    public var sentencePieceSize: Int { storage.pieces.count }

    /// The tokenizer's vocabulary size, `sentencePieceSize + 100` sentinels (`len(tokenizer)`).
    /// A model's `vocab_size` may be larger (t5-small: 32128 vs 32100).
    public var size: Int { storage.pieces.count + Self.sentinelCount }

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
    public func encode(_ text: String, appendEOS: Bool = true) -> [Int] {
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
    /// Owns the SentencePiece handle and the tables derived from the model. Immutable after
    /// init; SentencePiece's `Encode` is const and thread-safe, hence `@unchecked Sendable`.
    final class Storage: @unchecked Sendable {
        /// "▁" (U+2581), SentencePiece's and Metaspace's word-boundary mark.
        static let metaspace: Unicode.Scalar = "\u{2581}"

        /// Piece text by id, for ids below `sentencePieceSize`.
        let pieces: [String]
        /// Tokens cut out of the raw text before normalization.
        let addedTokens: AddedTokenMatcher
        /// Ids skipped by `decode` below `sentencePieceSize` (control pieces and `<unk>`).
        private let specialPieceIDs: Set<Int>
        private let normalizer: PrecompiledNormalizer?
        /// Maps the ids of the rewritten model SentencePiece searches to tokenizer ids.
        private let viterbiToID: [Int]
        private let handle: OpaquePointer

        init(modelFile: URL) throws(T5Error) {
            let path = modelFile.path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw .missingFile(path: path)
            }
            if isDirectory.boolValue {
                throw .unreadableFile(path: path, reason: "is a directory")
            }
            let data: Data
            do {
                data = try Data(contentsOf: modelFile)
            } catch {
                throw .unreadableFile(path: path, reason: error.localizedDescription)
            }

            let model: SentencePieceModel
            do {
                model = try SentencePieceModel(bytes: Array(data))
            } catch {
                throw .tokenizer(path: path, reason: "not a SentencePiece model: \(error.reason)")
            }
            // T5Tokenizer hard-codes unk_id=2 and looks "<pad>"/"</s>" up by name; the static
            // padID/eosID/unkID of this type are only right for models laid out that way.
            guard model.pieces.count >= 3,
                  model.pieces[0].text == "<pad>",
                  model.pieces[1].text == "</s>",
                  model.pieces[2].text == "<unk>", model.pieces[2].type == .unknown,
                  model.pieces.dropFirst(3).allSatisfy({ $0.type != .unknown })
            else {
                throw .tokenizer(path: path, reason: "expected T5's layout: <pad>, </s>, <unk> (the only unknown piece) at ids 0, 1, 2")
            }
            if model.pieces.contains(where: { $0.text.hasPrefix("<extra_id_") }) {
                throw .tokenizer(path: path, reason: "spiece.model already contains <extra_id_N> pieces")
            }
            do {
                normalizer = model.precompiledCharsmap.isEmpty
                    ? nil : try PrecompiledNormalizer(charsmap: model.precompiledCharsmap)
            } catch {
                throw .tokenizer(path: path, reason: error.reason)
            }

            pieces = model.pieces.map(\.text)
            let size = model.pieces.count + T5Tokenizer.sentinelCount

            // Added tokens, as SentencePieceExtractor.extract + T5Tokenizer.__init__ make them:
            // control pieces (special), user-defined pieces (not special), the unk token
            // (special), and the sentinels (special, ids counting down from size - 1).
            var added: [(String, Int)] = []
            var special: Set<Int> = [T5Tokenizer.unkID]
            for (id, piece) in model.pieces.enumerated() {
                switch piece.type {
                case .control:
                    added.append((piece.text, id))
                    special.insert(id)
                case .userDefined, .unknown:
                    added.append((piece.text, id))
                case .normal, .unused, .byte:
                    break
                }
            }
            for n in 0..<T5Tokenizer.sentinelCount {
                added.append(("<extra_id_\(n)>", size - 1 - n))
            }
            addedTokens = AddedTokenMatcher(added)
            specialPieceIDs = special

            let (viterbiModel, viterbiToID) = Self.viterbiModel(model)
            self.viterbiToID = viterbiToID
            var loaded: OpaquePointer?
            var message: UnsafeMutablePointer<CChar>?
            let status = viterbiModel.withUnsafeBytes { buffer in
                csp_processor_load(buffer.baseAddress, buffer.count, &loaded, &message)
            }
            let reason = Self.take(message)
            guard status == CSP_OK, let loaded else {
                throw .tokenizer(path: path, reason: "SentencePiece cannot load the model: \(reason ?? "status \(status)")")
            }
            handle = loaded
        }

        deinit {
            csp_processor_free(handle)
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
                        viterbi(String(piece), into: &ids)
                        piece = String.UnicodeScalarView()
                    }
                    piece.append(scalar)
                }
                viterbi(String(piece), into: &ids)
            }
        }

        /// The unigram search of `tokenizers`' `Unigram::encode` on one pre-token, run by
        /// SentencePiece. `fuse_unk`: a run of `<unk>` becomes one (this also joins a literal
        /// "<unk>" piece, which the rewritten model keeps under another id, with its neighbours).
        private func viterbi(_ piece: String, into ids: inout [Int]) {
            var utf8 = Array(piece.utf8)
            // Every id covers at least one byte, so `utf8.count` ids always fit.
            var found = [Int32](repeating: 0, count: max(utf8.count, 1))
            var count = 0
            var message: UnsafeMutablePointer<CChar>?
            let status = utf8.withUnsafeMutableBufferPointer { text in
                found.withUnsafeMutableBufferPointer { out in
                    text.baseAddress.map { base in
                        base.withMemoryRebound(to: CChar.self, capacity: text.count) { chars in
                            csp_processor_encode(handle, chars, text.count, out.baseAddress, out.count, &count, &message)
                        }
                    } ?? CSP_OK
                }
            }
            let reason = Self.take(message)
            guard status == CSP_OK else {
                // Cannot happen once the model loaded (the input is valid UTF-8 and the buffer
                // large enough); degrade to <unk> rather than crash a release build.
                assertionFailure("SentencePiece Encode failed: \(reason ?? "status \(status)")")
                ids.append(T5Tokenizer.unkID)
                return
            }
            var previousWasUnknown = false
            for raw in found.prefix(count) {
                let id = viterbiToID.indices.contains(Int(raw)) ? viterbiToID[Int(raw)] : T5Tokenizer.unkID
                let isUnknown = id == T5Tokenizer.unkID
                if !(isUnknown && previousWasUnknown) {
                    ids.append(id)
                }
                previousWasUnknown = isUnknown
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

        /// A copy of the model on which SentencePiece's `Encode` runs exactly `tokenizers`'
        /// `Unigram` search over transformers' vocabulary, with the tokenizer id of each of its
        /// pieces.
        ///
        /// transformers' Unigram vocab is every piece with its score, whatever its type, plus
        /// `<extra_id_99>`...`<extra_id_0>` with score 0 (`T5Converter.convert_from_spm`), and any
        /// of them may match inside a word, e.g. "＜/s＞" normalizes to "</s>" and becomes id 1.
        /// SentencePiece never matches control, unknown or unused pieces, and scores
        /// user-defined ones differently. So the copy makes every piece NORMAL, renames the
        /// UNKNOWN piece (it must stay, to give unknown characters an id) and appends a NORMAL
        /// twin of it plus the sentinels. It also makes the model unigram without byte
        /// fallback (transformers uses `Unigram(byte_fallback=False)` whatever the model says),
        /// and replaces the normalizer by identity without dummy prefix or whitespace handling,
        /// because steps 2-4 already did that work; self-test data is dropped as it would no
        /// longer hold.
        static func viterbiModel(_ model: SentencePieceModel) -> (bytes: [UInt8], toID: [Int]) {
            var writer = ProtoWriter()
            var toID: [Int] = []
            var existing = Set(model.pieces.map(\.text))
            func writePiece(_ text: String, _ score: Float, _ type: SentencePieceModel.PieceType, id: Int) {
                var piece = ProtoWriter()
                piece.writeBytesField(1, text.utf8)
                piece.writeFixed32Field(2, score.bitPattern)
                piece.writeVarintField(3, type.rawValue)
                writer.writeBytesField(1, piece.bytes)
                toID.append(id)
            }
            var unknownName = "\u{2047}unk\u{2047}"
            while existing.contains(unknownName) {
                unknownName += "\u{2047}"
            }
            existing.insert(unknownName)
            for (id, piece) in model.pieces.enumerated() {
                if piece.type == .unknown {
                    writePiece(unknownName, piece.score, .unknown, id: id)
                } else {
                    writePiece(piece.text, piece.score, .normal, id: id)
                }
            }
            let size = model.pieces.count + T5Tokenizer.sentinelCount
            for n in stride(from: T5Tokenizer.sentinelCount - 1, through: 0, by: -1) {
                writePiece("<extra_id_\(n)>", 0, .normal, id: size - 1 - n)
            }
            for (id, piece) in model.pieces.enumerated() where piece.type == .unknown {
                writePiece(piece.text, piece.score, .normal, id: id)
            }

            // trainer_spec: the original fields, then overrides (the last value of a field wins).
            var trainer = ProtoWriter()
            trainer.writeVarintField(3, 1)   // model_type = UNIGRAM
            trainer.writeVarintField(35, 0)  // byte_fallback = false
            writer.writeBytesField(2, model.trainerSpec + trainer.bytes)

            var normalizer = ProtoWriter()
            normalizer.writeBytesField(1, "identity".utf8)  // name
            normalizer.writeVarintField(3, 0)  // add_dummy_prefix = false
            normalizer.writeVarintField(4, 0)  // remove_extra_whitespaces = false
            normalizer.writeVarintField(5, 0)  // escape_whitespaces = false
            writer.writeBytesField(3, normalizer.bytes)
            return (writer.bytes, toID)
        }

        /// Takes ownership of a message allocated by the shim.
        private static func take(_ message: UnsafeMutablePointer<CChar>?) -> String? {
            guard let message else { return nil }
            defer { csp_free(message) }
            return String(cString: message)
        }
    }

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
}
