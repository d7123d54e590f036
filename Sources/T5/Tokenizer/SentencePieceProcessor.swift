import CSentencePiece

/// Owns a `sentencepiece::SentencePieceProcessor` behind the CSentencePiece shim and frees it
/// on deinit. The tokenizer uses it to load and validate `spiece.model` and to read the
/// vocabulary; the encoding itself follows transformers (see `Unigram`).
final class SentencePieceProcessor {
    struct LoadError: Error {
        var reason: String
    }

    private let handle: OpaquePointer

    /// Loads the bytes of a `.model` file.
    init(serializedModel bytes: [UInt8]) throws(LoadError) {
        var loaded: OpaquePointer?
        var message: UnsafeMutablePointer<CChar>?
        let status = bytes.withUnsafeBytes { buffer in
            csp_processor_load(buffer.baseAddress, buffer.count, &loaded, &message)
        }
        let reason = Self.take(message)
        guard status == CSP_OK, let loaded else {
            throw LoadError(reason: reason ?? "status \(status)")
        }
        handle = loaded
    }

    deinit {
        csp_processor_free(handle)
    }

    /// The number of pieces.
    var pieceCount: Int {
        var size: Int32 = 0
        return csp_processor_piece_size(handle, &size) == CSP_OK ? Int(size) : 0
    }

    /// The UTF-8 bytes, score and kind (`CSP_PIECE_*`) of piece `id`, or nil outside the vocabulary.
    func piece(_ id: Int) -> (text: [UInt8], score: Float, kind: Int32)? {
        guard let id32 = Int32(exactly: id) else { return nil }
        var text: UnsafePointer<CChar>?
        var length = 0
        var score: Float = 0
        var kind: Int32 = 0
        guard csp_processor_piece(handle, id32, &text, &length, &score, &kind) == CSP_OK, let text else {
            return nil
        }
        let bytes = UnsafeRawBufferPointer(start: text, count: length)
        return (Array(bytes), score, kind)
    }

    /// Takes ownership of a message allocated by the shim.
    private static func take(_ message: UnsafeMutablePointer<CChar>?) -> String? {
        guard let message else { return nil }
        defer { csp_free(message) }
        return String(cString: message)
    }
}
