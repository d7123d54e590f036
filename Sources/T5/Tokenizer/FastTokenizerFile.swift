import Foundation

/// transformers' fast-tokenizer file, `tokenizer.json`, accepted only when it is T5's pipeline as
/// `T5TokenizerFast.save_pretrained` writes it (transformers/models/t5/tokenization_t5.py builds it):
/// a Unigram model (`unk_id` 2, no byte fallback) over every piece of spiece.model with its score followed by
/// `<extra_id_99>` ... `<extra_id_0>` with score 0, the `Precompiled` normalizer (its charsmap in base64) or
/// none, `WhitespaceSplit` then `Metaspace("▁", prepend_scheme "always", split)`, a Metaspace decoder, and the
/// template `$A </s>`.
///
/// transformers 5 rebuilds exactly that pipeline from the file's vocabulary and charsmap whatever else the
/// file says (`TokenizersBackend.convert_to_native_format`, then `T5Tokenizer.__init__`), while transformers 4
/// and `tokenizers` run the file as written. A file holding anything else (BPE, another normalizer, byte
/// fallback, other added-token flags) would get different ids from the two, so it is refused, naming the
/// field; on the accepted shape both give the same ids (checked by tools/make_tokenizer_json_fixture.py).
struct FastTokenizerFile {
    /// The Unigram vocabulary: the pieces, then the 100 sentinels.
    let vocabulary: [(text: String, score: Double)]
    /// The pieces before the sentinels (the pieces of the spiece.model it was converted from).
    let pieceCount: Int
    let normalizer: PrecompiledNormalizer?
    /// The tokens cut out of the raw text before normalization, with their ids.
    let addedTokens: [(String, Int)]
    /// Ids below `pieceCount` that `decode(skip_special_tokens=True)` skips.
    let specialPieceIDs: Set<Int>
    /// The file as read, written again with a trained or converted model.
    let bytes: [UInt8]

    init(url: URL) throws(T5Error) {
        let path = url.path
        bytes = try TextFile.bytes(path: path)
        let root: JSONObject
        do {
            guard case .object(let o) = try JSONParser.parse(Data(bytes)) else {
                throw T5Error.invalidConfig(path: path, reason: "the top level is not an object")
            }
            root = o
        } catch let error as JSONParseError {
            throw .invalidConfig(path: path, reason: "malformed JSON: \(error.description)")
        } catch {
            throw error as? T5Error ?? .invalidConfig(path: path, reason: "\(error)")
        }
        func refuse(_ field: String, _ reason: String) -> T5Error {
            .tokenizer(path: path, reason: "\(field): \(reason) (T5's Unigram pipeline, as T5TokenizerFast saves it, is supported)")
        }

        // model: Unigram over (piece, score) pairs, <unk> at 2, no byte fallback.
        guard let model = Self.object(root["model"]), Self.string(model["type"]) == "Unigram" else {
            throw refuse("model.type", "not Unigram")
        }
        guard case .integer(2)? = model["unk_id"] else { throw refuse("model.unk_id", "not 2") }
        if case .bool(true)? = model["byte_fallback"] { throw refuse("model.byte_fallback", "true") }
        guard case .array(let entries)? = model["vocab"] else { throw refuse("model.vocab", "missing") }
        var vocabulary: [(text: String, score: Double)] = []
        vocabulary.reserveCapacity(entries.count)
        for (i, entry) in entries.enumerated() {
            guard case .array(let pair) = entry, pair.count == 2, case .string(let text) = pair[0] else {
                throw refuse("model.vocab[\(i)]", "not a [piece, score] pair")
            }
            let score: Double
            switch pair[1] {
            case .number(let d): score = d
            case .integer(let n): score = Double(n)
            default: throw refuse("model.vocab[\(i)]", "the score is not a number")
            }
            vocabulary.append((text, score))
        }
        let count = vocabulary.count - T5Tokenizer.sentinelCount
        guard count >= 3, vocabulary[0].text == "<pad>", vocabulary[1].text == "</s>", vocabulary[2].text == "<unk>" else {
            throw refuse("model.vocab", "expected <pad>, </s>, <unk> at 0, 1, 2")
        }
        for id in count..<vocabulary.count where vocabulary[id].text != "<extra_id_\(vocabulary.count - 1 - id)>" || vocabulary[id].score != 0 {
            throw refuse("model.vocab[\(id)]", "expected the sentinel <extra_id_\(vocabulary.count - 1 - id)> with score 0 (the last 100 pieces)")
        }

        // normalizer: Precompiled (its charsmap in base64), or none.
        switch root["normalizer"] {
        case nil, .null?:
            normalizer = nil
        case .object(let n)? where Self.string(n["type"]) == "Precompiled":
            guard let encoded = Self.string(n["precompiled_charsmap"]), let charsmap = Data(base64Encoded: encoded) else {
                throw refuse("normalizer.precompiled_charsmap", "not base64")
            }
            do {
                normalizer = charsmap.isEmpty ? nil : try PrecompiledNormalizer(charsmap: Array(charsmap))
            } catch {
                throw .tokenizer(path: path, reason: error.reason)
            }
        default:
            throw refuse("normalizer", "not Precompiled")
        }
        guard let pre = Self.object(root["pre_tokenizer"]), Self.string(pre["type"]) == "Sequence",
              case .array(let steps)? = pre["pretokenizers"], steps.count == 2,
              Self.string(Self.object(steps[0])?["type"]) == "WhitespaceSplit", Self.isT5Metaspace(steps[1])
        else { throw refuse("pre_tokenizer", "not WhitespaceSplit + Metaspace(▁, always, split)") }
        guard Self.isT5Metaspace(root["decoder"]) else { throw refuse("decoder", "not Metaspace(▁, always, split)") }
        // post_processor: `$A </s>` with </s> = 1.
        guard let post = Self.object(root["post_processor"]), Self.string(post["type"]) == "TemplateProcessing",
              case .array(let single)? = post["single"], single.count == 2,
              Self.string(Self.object(Self.object(single[0])?["Sequence"])?["id"]) == "A",
              Self.string(Self.object(Self.object(single[1])?["SpecialToken"])?["id"]) == "</s>"
        else { throw refuse("post_processor", "not the template $A </s>") }

        // added_tokens: special ones are skipped by decode; all are cut out of the raw text first.
        var added: [(String, Int)] = []
        var special: Set<Int> = [0, 1, 2]
        if case .array(let tokens)? = root["added_tokens"] {
            for (i, token) in tokens.enumerated() {
                guard let t = Self.object(token), case .integer(let id)? = t["id"], let content = Self.string(t["content"]),
                      id >= 0, id < vocabulary.count, vocabulary[id].text == content else {
                    throw refuse("added_tokens[\(i)]", "not a piece of model.vocab at its id")
                }
                for flag in ["lstrip", "rstrip", "single_word"] where t[flag] == .bool(true) {
                    throw refuse("added_tokens[\(i)].\(flag)", "true")
                }
                let isSpecial = t["special"] == .bool(true)
                if !isSpecial && t["normalized"] == .bool(true) {
                    throw refuse("added_tokens[\(i)].normalized", "true for a token that is not special")
                }
                added.append((content, id))
                if isSpecial && id < count { special.insert(id) }
            }
        }
        for (content, id) in [("<pad>", 0), ("</s>", 1), ("<unk>", 2)] where !added.contains(where: { $0.1 == id }) {
            added.append((content, id))
        }
        for id in count..<vocabulary.count where !added.contains(where: { $0.1 == id }) {
            added.append((vocabulary[id].text, id))
        }
        self.vocabulary = vocabulary
        pieceCount = count
        addedTokens = added
        specialPieceIDs = special
    }

    /// Metaspace("▁", prepend_scheme "always", split) as `tokenizers` deserializes it
    /// (pre_tokenizers/metaspace.rs, also the decoder): `prepend_scheme` defaults to "always", `split` to
    /// true, and the legacy `add_prefix_space` that older versions wrote instead must then be true.
    static func isT5Metaspace(_ value: JSONValue?) -> Bool {
        guard let m = object(value), string(m["type"]) == "Metaspace", string(m["replacement"]) == "\u{2581}" else { return false }
        return (m["prepend_scheme"].map { $0 == .string("always") } ?? true)
            && (m["add_prefix_space"].map { $0 == .bool(true) } ?? true)
            && (m["split"].map { $0 == .bool(true) } ?? true)
    }

    static func object(_ value: JSONValue?) -> JSONObject? { if case .object(let o)? = value { return o } else { return nil } }
    static func string(_ value: JSONValue?) -> String? { if case .string(let s)? = value { return s } else { return nil } }
}
