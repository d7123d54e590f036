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
        if !FileManager.default.fileExists(atPath: spiece.path) && FileManager.default.fileExists(atPath: json.path) {
            return try T5Tokenizer(tokenizerJSON: json)
        }
        return try T5Tokenizer(modelFile: spiece)
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
