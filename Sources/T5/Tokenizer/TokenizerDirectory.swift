import Foundation

/// Finds a model directory's tokenizer as transformers' `AutoTokenizer` does offline: `ByT5Tokenizer`
/// when tokenizer_config.json's (or else config.json's) `tokenizer_class` names it, SentencePiece's
/// `spiece.model` otherwise, or transformers' `tokenizer.json` when there is no `spiece.model`.
public enum TokenizerDirectory {
    /// The tokenizer files a model directory may hold, copied with the model by checkpoints.
    public static let fileNames = ["spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"]

    /// Loads the tokenizer of the model directory `directory`.
    ///
    /// - Throws: `.tokenizer` when the directory names a tokenizer class this runtime does not have, or
    ///   holds both a `spiece.model` and a ByT5 configuration; the loaders' errors otherwise.
    public static func load(_ directory: URL) throws(T5Error) -> any Tokenizer {
        let spiece = directory.appendingPathComponent("spiece.model")
        let className = try tokenizerClass(directory)
        if let className, className.hasPrefix("ByT5Tokenizer") {
            if FileManager.default.fileExists(atPath: spiece.path) {
                throw .tokenizer(path: spiece.path, reason: "the directory names \(className) but also holds a spiece.model; remove the one that does not belong")
            }
            return try ByT5Tokenizer(directory: directory)
        }
        if let className, !["T5Tokenizer", "T5TokenizerFast", "MT5Tokenizer", "MT5TokenizerFast"].contains(className),
           !FileManager.default.fileExists(atPath: spiece.path) {
            throw .tokenizer(path: directory.path, reason: "tokenizer_class \(className) is not supported (T5Tokenizer with spiece.model, and ByT5Tokenizer, are)")
        }
        // transformers' fast-tokenizer file alone (T5TokenizerFast.save_pretrained without spiece.model).
        let json = directory.appendingPathComponent("tokenizer.json")
        let tokenizer = !FileManager.default.fileExists(atPath: spiece.path) && FileManager.default.fileExists(atPath: json.path)
            ? try T5Tokenizer(tokenizerJSON: json) : try T5Tokenizer(modelFile: spiece)
        try checkAddedTokens(directory, against: tokenizer)
        return tokenizer
    }

    /// Tokens a user added (`tokenizer.add_tokens`, saved in tokenizer_config.json's `added_tokens_decoder`)
    /// that the SentencePiece table does not hold: transformers would split them out of the text, this
    /// tokenizer would not, so such a directory is refused rather than tokenized differently.
    static func checkAddedTokens(_ directory: URL, against tokenizer: T5Tokenizer) throws(T5Error) {
        let url = directory.appendingPathComponent("tokenizer_config.json")
        guard FileManager.default.fileExists(atPath: url.path),
              case .object(let decoder)? = try ConfigReader.load(url).object["added_tokens_decoder"] else { return }
        for member in decoder.members {
            guard case .object(let entry) = member.value, case .string(let content)? = entry["content"] else { continue }
            guard let id = Int(member.key), tokenizer.piece(for: id) == content else {
                throw .tokenizer(path: url.path, reason: "added token '\(content)' (id \(member.key)) is not in the SentencePiece model; tokens added with add_tokens are not supported")
            }
        }
    }

    /// `tokenizer_class` of tokenizer_config.json, else of config.json, else nil.
    static func tokenizerClass(_ directory: URL) throws(T5Error) -> String? {
        for name in ["tokenizer_config.json", "config.json"] {
            let url = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            let reader = try ConfigReader.load(url)
            guard let found = reader.object["tokenizer_class"] else { continue }
            switch found {
            case .null: continue
            case .string(let s): return s
            default: throw reader.invalid("tokenizer_class", "expected a string, found \(found.typeName)")
            }
        }
        return nil
    }
}
