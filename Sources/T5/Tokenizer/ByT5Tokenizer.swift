import Foundation

/// ByT5's tokenizer: UTF-8 bytes, giving exactly the ids of transformers 5's `ByT5Tokenizer`
/// (models/byt5/tokenization_byt5.py on tokenization_python.py's `PreTrainedTokenizer`) and decoding like
/// its `decode(ids, skip_special_tokens=True)`.
///
/// Ids: `<pad>` 0, `</s>` 1, `<unk>` 2, byte `b` at `b + 3` (3...258), then the added tokens. By default
/// these are the 125 sentinels, `<extra_id_0>` at 259 up to `<extra_id_124>` at 383 (transformers 5 adds
/// them upwards, whatever its docstring says), 384 ids in all.
///
/// Encoding follows `PreTrainedTokenizer.tokenize` and `build_inputs_with_special_tokens`:
/// 1. The text is cut around added tokens (`Trie.split`: leftmost, then longest).
/// 2. An added token with `rstrip` strips whitespace (Python's `str.isspace`) from the start of the piece
///    after it, one with `lstrip` from the end of the piece before it. `<pad>`, `</s>` and `<unk>` have
///    both: `"a </s> b"` gives `a </s> b` with no spaces. A `single_word` token glued to a word joins
///    that word and is then read as bytes.
/// 3. Any other piece becomes its UTF-8 bytes, each plus 3.
/// 4. `</s>` is appended unless the ids already end with it (`_add_eos_if_not_present`).
///
/// Decoding drops special ids (`<pad>`, `</s>`, `<unk>`, the sentinels, other special added tokens) and
/// ids outside the table, joins the bytes and the added tokens' text, and decodes the bytes as Python's
/// `bytes.decode("utf-8", errors="ignore")`: a sequence that is not UTF-8 (a character cut by a length
/// limit, a byte a model made up) is dropped, the text around it kept.
public struct ByT5Tokenizer: Tokenizer {
    /// A token outside the bytes, as transformers' `AddedToken`.
    public struct AddedToken: Sendable, Equatable {
        public var content: String
        /// Skipped by `decode` (`skip_special_tokens`).
        public var special: Bool
        /// Strip whitespace at the end of the text before this token.
        public var lstrip: Bool
        /// Strip whitespace at the start of the text after this token.
        public var rstrip: Bool
        /// Only a token when it stands alone as a word.
        public var singleWord: Bool

        public init(_ content: String, special: Bool, lstrip: Bool = false, rstrip: Bool = false, singleWord: Bool = false) {
            self.content = content
            self.special = special
            self.lstrip = lstrip
            self.rstrip = rstrip
            self.singleWord = singleWord
        }
    }

    /// Byte `b` has id `b + 3`.
    static let byteOffset = 3
    /// The first id after the bytes.
    static let firstAddedID = 256 + byteOffset
    /// More added tokens than this is not a tokenizer file anyone wrote.
    static let maxAddedTokens = 1 << 20

    private let storage: Storage

    /// ByT5's tokenizer as `ByT5Tokenizer(extra_ids: extraIDs)` makes it.
    public init(extraIDs: Int = 125) throws(T5Error) {
        guard (0...Self.maxAddedTokens).contains(extraIDs) else {
            throw .tokenizer(path: "ByT5Tokenizer", reason: "extra_ids \(extraIDs) is outside 0...\(Self.maxAddedTokens)")
        }
        var tokens = Self.baseTokens()
        for n in 0..<extraIDs {
            tokens[Self.firstAddedID + n] = AddedToken("<extra_id_\(n)>", special: true)
        }
        var config = JSONObject()
        config["extra_ids"] = .integer(extraIDs)
        config["tokenizer_class"] = .string("ByT5Tokenizer")
        let file = Data(JSONWriter.serialize(.object(config), style: .pythonIndented) + [UInt8(ascii: "\n")])
        storage = try Storage(tokens: tokens, files: ["tokenizer_config.json": file], path: "ByT5Tokenizer")
    }

    /// The tokenizer of a ByT5 model directory: tokenizer_config.json's `added_tokens_decoder` (what
    /// transformers 5 writes) when present, else its `extra_ids` (125 when absent) or
    /// `additional_special_tokens` / `extra_special_tokens` as sentinels from id 259, checked against
    /// added_tokens.json. Without tokenizer_config.json, the defaults.
    ///
    /// - Throws: `.invalidConfig` for a malformed file, `.tokenizer` for a layout transformers would read
    ///   otherwise than these rules (refused rather than guessed).
    public init(directory: URL) throws(T5Error) {
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        var files: [String: Data] = [:]
        for name in TokenizerDirectory.fileNames where name != "spiece.model" {
            let url = directory.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path) {
                files[name] = Data(try TextFile.bytes(path: url.path))
            }
        }
        var tokens = Self.baseTokens()
        if files["tokenizer_config.json"] != nil {
            let reader = try ConfigReader.load(configURL)
            if let decoder = reader.object["added_tokens_decoder"] {
                try Self.readAddedTokensDecoder(decoder, reader: reader, into: &tokens)
            } else {
                try Self.readSentinels(reader, into: &tokens)
                try Self.checkAddedTokensFile(directory.appendingPathComponent("added_tokens.json"), against: tokens)
            }
            // pad_token / eos_token / unk_token name the tokens at 0, 1 and 2, which T5 models rely on.
            for (key, id) in [("pad_token", 0), ("eos_token", 1), ("unk_token", 2)] {
                guard let value = reader.object[key], let content = Self.content(of: value) else { continue }
                if tokens[id]?.content != content {
                    throw .tokenizer(path: configURL.path, reason: "\(key) '\(content)' is not the token at id \(id) ('\(tokens[id]?.content ?? "")'); T5 models need <pad>, </s>, <unk> at 0, 1, 2")
                }
            }
        } else {
            for n in 0..<125 {
                tokens[Self.firstAddedID + n] = AddedToken("<extra_id_\(n)>", special: true)
            }
            try Self.checkAddedTokensFile(directory.appendingPathComponent("added_tokens.json"), against: tokens)
        }
        storage = try Storage(tokens: tokens, files: files, path: configURL.path)
    }

    public var size: Int { storage.size }
    public var ordinaryIDs: Range<Int> { Self.byteOffset..<Self.firstAddedID }
    public var sentinelCount: Int { storage.sentinels.count }

    public func sentinelID(_ n: Int) -> Int {
        precondition(storage.sentinels.indices.contains(n), "sentinel index \(n) outside 0..<\(storage.sentinels.count)")
        return storage.sentinels[n]
    }

    /// `convert_ids_to_tokens`: a byte's token is the character with that code point (`chr(b)`).
    public func piece(for id: Int) -> String? {
        if ordinaryIDs.contains(id) {
            return String(Character(Unicode.Scalar(UInt8(id - Self.byteOffset))))
        }
        return storage.tokens[id]?.content
    }

    public var summary: String {
        let added = storage.tokens.count - 3 - storage.sentinels.count
        return "ByT5 (UTF-8 bytes): 3 special + 256 bytes + \(storage.sentinels.count) sentinels"
            + (added > 0 ? " + \(added) added tokens" : "")
    }

    public var files: [String: Data] { storage.files }

    public func encode(_ text: String, appendEOS: Bool) -> [Int] {
        var parts = storage.split(text)
        // PreTrainedTokenizer.tokenize: each added token strips its neighbours in place, left to right;
        // a later token sees the earlier ones' changes.
        for i in parts.indices {
            guard let id = storage.ids[parts[i]], let token = storage.tokens[id] else { continue }
            let left = i > 0 ? parts[i - 1] : nil
            let right = i + 1 < parts.count ? parts[i + 1] : nil
            if token.rstrip, let right, !right.isEmpty {
                parts[i + 1] = Self.pythonLStrip(right)
            }
            if token.lstrip, let left, !left.isEmpty {
                parts[i - 1] = Self.pythonRStrip(left)
            }
            if token.singleWord {
                if let left, !left.isEmpty, left.unicodeScalars.last != " " {
                    parts[i - 1] += parts[i]
                    parts[i] = ""
                } else if let right, !right.isEmpty, right.unicodeScalars.first != " " {
                    parts[i + 1] = parts[i] + parts[i + 1]
                    parts[i] = ""
                }
            }
        }
        var ids: [Int] = []
        for part in parts where !part.isEmpty {
            if let id = storage.ids[part] {
                ids.append(id)
            } else {
                ids.append(contentsOf: part.utf8.map { Int($0) + Self.byteOffset })
            }
        }
        if appendEOS, ids.last != eosID {
            ids.append(eosID)
        }
        return ids
    }

    public func decode(_ ids: [Int]) -> String {
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && id < storage.size && !storage.special.contains(id) {
            if ordinaryIDs.contains(id) {
                bytes.append(UInt8(id - Self.byteOffset))
            } else if let token = storage.tokens[id] {
                bytes.append(contentsOf: token.content.utf8)
            }
        }
        // errors="ignore": every maximal ill-formed subsequence is dropped (Swift's decoder and CPython's
        // both report them at the positions Unicode's "best practice for U+FFFD substitution" gives).
        var output = String.UnicodeScalarView()
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        decoding: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): output.append(scalar)
            case .emptyInput: break decoding
            case .error: continue
            }
        }
        return String(output)
    }
}

extension ByT5Tokenizer {
    /// `<pad>`, `</s>`, `<unk>`: `AddedToken(..., lstrip=True, rstrip=True)` in `ByT5Tokenizer.__init__`.
    static func baseTokens() -> [Int: AddedToken] {
        [0: AddedToken("<pad>", special: true, lstrip: true, rstrip: true),
         1: AddedToken("</s>", special: true, lstrip: true, rstrip: true),
         2: AddedToken("<unk>", special: true, lstrip: true, rstrip: true)]
    }

    /// A token named in tokenizer_config.json: a string, or an object with `content`.
    static func content(of value: JSONValue) -> String? {
        switch value {
        case .string(let s): return s
        case .object(let o): if case .string(let s)? = o["content"] { return s } else { return nil }
        default: return nil
        }
    }

    /// transformers 5's `added_tokens_decoder`: `{"259": {"content": "<extra_id_0>", "lstrip": false, ...}}`.
    static func readAddedTokensDecoder(_ value: JSONValue, reader: ConfigReader, into tokens: inout [Int: AddedToken]) throws(T5Error) {
        guard case .object(let entries) = value else {
            throw reader.invalid("added_tokens_decoder", "expected an object, found \(value.typeName)")
        }
        guard entries.count <= maxAddedTokens else {
            throw reader.invalid("added_tokens_decoder", "\(entries.count) tokens is more than \(maxAddedTokens)")
        }
        for member in entries.members {
            let key = member.key, entry = member.value
            guard let id = Int(key), id >= 0, id < firstAddedID + maxAddedTokens else {
                throw reader.invalid("added_tokens_decoder", "'\(key)' is not an id")
            }
            guard id < 3 || id >= firstAddedID else {
                throw reader.invalid("added_tokens_decoder", "id \(id) is a byte's id (3...258)")
            }
            guard case .object(let fields) = entry, case .string(let content)? = fields["content"], !content.isEmpty else {
                throw reader.invalid("added_tokens_decoder", "entry \(key) has no content")
            }
            func flag(_ name: String, _ fallback: Bool) throws(T5Error) -> Bool {
                switch fields[name] {
                case nil, .null?: return fallback
                case .bool(let b)?: return b
                case let other?: throw reader.invalid("added_tokens_decoder", "entry \(key): \(name) must be true or false, found \(other.typeName)")
                }
            }
            // pad/eos/unk are special whatever the entry says: they are in `all_special_ids`.
            let base = tokens[id].flatMap { id < 3 ? $0 : nil }
            tokens[id] = AddedToken(content, special: try flag("special", false) || base != nil,
                                    lstrip: try flag("lstrip", false), rstrip: try flag("rstrip", false),
                                    singleWord: try flag("single_word", false))
        }
        // Tokens listed as special tokens are skipped by decode even when their entry says otherwise.
        for name in try specialTokenList(reader) {
            for (id, token) in tokens where token.content == name {
                tokens[id]?.special = true
            }
        }
    }

    /// `additional_special_tokens` (transformers 4) or `extra_special_tokens` (5), empty when neither.
    static func specialTokenList(_ reader: ConfigReader) throws(T5Error) -> [String] {
        for key in ["additional_special_tokens", "extra_special_tokens"] {
            guard let value = reader.object[key] else { continue }
            switch value {
            case .null: continue
            case .array(let elements):
                var names: [String] = []
                for element in elements {
                    guard let name = content(of: element) else { throw reader.invalid(key, "expected token names, found \(element.typeName)") }
                    names.append(name)
                }
                return names
            default:
                throw reader.invalid(key, "expected a list of tokens, found \(value.typeName)")
            }
        }
        return []
    }

    /// The older layout (hub checkpoints saved by transformers 4): `extra_ids` sentinels, or the listed
    /// special tokens, from id 259 in order; transformers refuses a list that does not hold exactly
    /// `extra_ids` sentinels when both are given.
    static func readSentinels(_ reader: ConfigReader, into tokens: inout [Int: AddedToken]) throws(T5Error) {
        let extraIDs = try reader.int("extra_ids", default: 125)
        guard (0...maxAddedTokens).contains(extraIDs) else {
            throw reader.invalid("extra_ids", "\(extraIDs) is outside 0...\(maxAddedTokens)")
        }
        let listed = try specialTokenList(reader)
        if extraIDs > 0, !listed.isEmpty, Set(listed.filter { $0.contains("extra_id") }).count != extraIDs {
            throw reader.invalid("additional_special_tokens", "must include the \(extraIDs) extra_ids tokens, as transformers requires")
        }
        let names = listed.isEmpty ? (0..<extraIDs).map { "<extra_id_\($0)>" } : listed
        guard names.count <= maxAddedTokens else { throw reader.invalid("additional_special_tokens", "more than \(maxAddedTokens) tokens") }
        for (n, name) in names.enumerated() {
            tokens[firstAddedID + n] = AddedToken(name, special: true)
        }
    }

    /// added_tokens.json (`{"content": id}`) beside a tokenizer_config.json without `added_tokens_decoder`:
    /// each entry must be a token the table already has at that id. transformers 5 places other entries
    /// inconsistently (before the sentinels, moving them), so such a file is refused, not guessed.
    static func checkAddedTokensFile(_ url: URL, against tokens: [Int: AddedToken]) throws(T5Error) {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let reader = try ConfigReader.load(url)
        for member in reader.object.members {
            let content = member.key, value = member.value
            guard case .integer(let id) = value else { throw reader.invalid(content, "expected an id, found \(value.typeName)") }
            guard tokens[id]?.content == content else {
                throw .tokenizer(path: url.path, reason: "'\(content)' at id \(id) is not in tokenizer_config.json's tokens; save the tokenizer again with transformers 5 (which records added_tokens_decoder) to add tokens")
            }
        }
    }

    /// Python's `str.lstrip()`: drops leading characters for which `str.isspace` holds.
    static func pythonLStrip(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.drop(while: isPythonSpace)))
    }

    /// Python's `str.rstrip()`.
    static func pythonRStrip(_ s: String) -> String {
        var scalars = s.unicodeScalars[...]
        while let last = scalars.last, isPythonSpace(last) { scalars = scalars.dropLast() }
        return String(String.UnicodeScalarView(scalars))
    }

    /// The characters for which Python's `str.isspace()` is true (bidirectional class WS, B or S, or
    /// category Zs): listed from CPython 3.11.
    static func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// The tables derived from the added tokens; immutable, so safely shared between threads.
    final class Storage: Sendable {
        let tokens: [Int: AddedToken]
        /// Added token content → id.
        let ids: [String: Int]
        let special: Set<Int>
        /// `<extra_id_n>`'s id at index n, for n from 0 while the sentinels are consecutive.
        let sentinels: [Int]
        let size: Int
        let files: [String: Data]
        private let matcher: AddedTokenMatcher

        init(tokens: [Int: AddedToken], files: [String: Data], path: String) throws(T5Error) {
            var ids: [String: Int] = [:]
            for (id, token) in tokens.sorted(by: { $0.key < $1.key }) {
                if let other = ids[token.content] {
                    throw .tokenizer(path: path, reason: "'\(token.content)' is both id \(other) and id \(id)")
                }
                ids[token.content] = id
            }
            var sentinels: [Int] = []
            while let id = ids["<extra_id_\(sentinels.count)>"] { sentinels.append(id) }
            self.tokens = tokens
            self.ids = ids
            self.special = Set(tokens.filter { $0.value.special }.keys)
            self.sentinels = sentinels
            self.size = max(ByT5Tokenizer.firstAddedID, (tokens.keys.max() ?? 0) + 1)
            self.files = files
            matcher = AddedTokenMatcher(tokens.map { ($0.value.content, $0.key) })
        }

        /// `Trie.split`: the text cut around added tokens (leftmost, then longest), no empty parts.
        func split(_ text: String) -> [String] {
            let bytes = Array(text.utf8)
            var parts: [String] = []
            var chunkStart = 0
            var position = 0
            while position < bytes.count {
                if let (length, id) = matcher.longestMatch(in: bytes, at: position) {
                    if chunkStart < position {
                        parts.append(String(decoding: bytes[chunkStart..<position], as: UTF8.self))
                    }
                    parts.append(tokens[id]?.content ?? "")
                    position += length
                    chunkStart = position
                } else {
                    position += 1
                }
            }
            if chunkStart < bytes.count {
                parts.append(String(decoding: bytes[chunkStart...], as: UTF8.self))
            }
            return parts
        }
    }
}
