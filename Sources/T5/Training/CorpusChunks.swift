import Foundation

/// Where a corpus stream is: enough to produce its next chunk again after a restart, without reading what
/// came before (a plain file is seeked, a compressed one inflated up to `offset`). Saved in checkpoints.
public struct CorpusPosition: Codable, Sendable, Equatable {
    /// Chunks produced so far, over all passes: the index of the next one.
    public var chunk = 0
    /// Passes over the corpus completed.
    public var pass = 0
    /// The file, the byte offset and line of the document the next chunk starts in, and how many of its
    /// tokens earlier chunks took.
    public var file = 0
    public var offset = 0
    public var line = 1
    public var token = 0

    public init() {}
}

/// What one pass over a corpus found, from `CorpusChunks.scan`.
public struct CorpusSummary: Sendable, Equatable {
    public var documents = 0
    /// Tokens of all documents, one `</s>` each included.
    public var tokens = 0
    /// Chunks per pass: the token stream cut into `rawLength` pieces, the remainder dropped.
    public var chunks = 0
    /// FNV-1a over every document's ids, so that `--resume` notices a changed corpus.
    public var fingerprint: UInt64 = 0xCBF2_9CE4_8422_2325
}

/// The raw chunks of a corpus as `run_t5_mlm_flax.py`'s `tokenize_function` + `group_texts` make them: each
/// document tokenized with `</s>` at its end, the documents of all files concatenated in order, the stream
/// cut into chunks of `length` tokens, the remainder of a pass dropped. Unlike `group_texts`, which drops a
/// remainder per 1,000 documents, only the end of the whole corpus is dropped. After the last chunk of a pass
/// the next pass starts over from the first file.
public final class CorpusChunks {
    public let files: [String]
    public let onePerLine: Bool
    public let length: Int
    public let tokenizer: any Tokenizer
    /// The position of the next chunk.
    public private(set) var position = CorpusPosition()

    private var reader: CorpusReader?
    /// The document being cut, from where the next chunk starts.
    private var document: [Int] = []
    private var cursor = 0
    private var documentStart: (file: Int, offset: Int, line: Int) = (0, 0, 1)
    private var readerFile = 0

    public init(files: [String], onePerLine: Bool, length: Int, tokenizer: any Tokenizer) {
        precondition(!files.isEmpty && length > 0)
        self.files = files
        self.onePerLine = onePerLine
        self.length = length
        self.tokenizer = tokenizer
    }

    /// Continues from `target`, a position this stream (or one over the same corpus) reported.
    public func seek(to target: CorpusPosition) throws(T5Error) {
        guard target.file < files.count, target.offset >= 0, target.token >= 0, target.line >= 1 else {
            throw .invalidOption(name: "corpus position", reason: "file \(target.file), offset \(target.offset) is outside the corpus")
        }
        reader = try CorpusReader(path: files[target.file], format: CorpusFormat.of(files[target.file], onePerLine: onePerLine),
                                  offset: target.offset, line: target.line)
        readerFile = target.file
        document = []
        cursor = 0
        if target.token > 0 {
            guard let d = try reader?.next() else {
                throw .unreadableFile(path: files[target.file], reason: "no document at byte \(target.offset) where the run stopped (the file changed)")
            }
            document = tokenizer.encode(d.text)
            documentStart = (target.file, d.offset, d.line)
            guard target.token < document.count else {
                throw .unreadableFile(path: files[target.file], reason: "the document at line \(d.line) is shorter than where the run stopped (the file changed)")
            }
            cursor = target.token
        }
        position = target
    }

    /// Moves to chunk `index`: reading on when it is ahead, else from `hint` (a saved position not past it),
    /// else from the start.
    public func seek(toChunk index: Int, hint: CorpusPosition? = nil) throws(T5Error) {
        if reader != nil && position.chunk == index { return }
        let canContinue = reader != nil && position.chunk <= index
        if let hint, hint.chunk <= index, !(canContinue && position.chunk >= hint.chunk) {
            try seek(to: hint)
        } else if !canContinue {
            try seek(to: CorpusPosition())
        }
        while position.chunk < index { _ = try next() }
    }

    /// The next chunk of `length` ids.
    public func next() throws(T5Error) -> [Int] {
        if reader == nil { try seek(to: position) }
        var chunk = [Int]()
        chunk.reserveCapacity(length)
        var restarts = 0
        while chunk.count < length {
            if cursor == document.count {
                guard let d = try nextDocument() else {
                    // The end of the corpus: drop the remainder and start the next pass.
                    restarts += 1
                    if restarts > 1 {
                        throw .invalidData(path: files[0], line: 1, reason: "the corpus now holds fewer than \(length) tokens, not one chunk (the file changed)")
                    }
                    chunk.removeAll(keepingCapacity: true)
                    position.pass += 1
                    try seekStart(pass: position.pass)
                    continue
                }
                document = d
                cursor = 0
            }
            let take = min(length - chunk.count, document.count - cursor)
            chunk.append(contentsOf: document[cursor..<(cursor + take)])
            cursor += take
        }
        position.chunk += 1
        if cursor < document.count {
            (position.file, position.offset, position.line, position.token) = (documentStart.file, documentStart.offset, documentStart.line, cursor)
        } else {
            (position.file, position.offset, position.line, position.token) = (readerFile, reader?.offset ?? 0, reader?.line ?? 1, 0)
        }
        return chunk
    }

    private func seekStart(pass: Int) throws(T5Error) {
        var start = CorpusPosition()
        start.chunk = position.chunk
        start.pass = pass
        try seek(to: start)
    }

    /// The next document's ids (with `</s>`), moving to the next file at the end of one; nil after the last.
    private func nextDocument() throws(T5Error) -> [Int]? {
        while true {
            if let d = try reader?.next() {
                documentStart = (readerFile, d.offset, d.line)
                return tokenizer.encode(d.text)
            }
            guard readerFile + 1 < files.count else { return nil }
            readerFile += 1
            reader = try CorpusReader(path: files[readerFile], format: CorpusFormat.of(files[readerFile], onePerLine: onePerLine))
        }
    }

    /// Reads every file once: checks it (UTF-8, JSON, gzip integrity) and counts documents, tokens and
    /// chunks. Throws `.invalidData` naming the first file when the corpus has no document or fewer tokens
    /// than one chunk.
    public static func scan(files: [String], onePerLine: Bool, length: Int, tokenizer: any Tokenizer) throws(T5Error) -> CorpusSummary {
        var summary = CorpusSummary()
        for path in files {
            let reader = try CorpusReader(path: path, format: CorpusFormat.of(path, onePerLine: onePerLine))
            while let d = try reader.next() {
                let ids = tokenizer.encode(d.text)
                summary.documents += 1
                summary.tokens += ids.count
                for id in ids {
                    var v = UInt64(truncatingIfNeeded: id)
                    for _ in 0..<4 {
                        summary.fingerprint ^= v & 0xFF
                        summary.fingerprint &*= 0x0000_0100_0000_01B3
                        v >>= 8
                    }
                }
            }
        }
        // The error names the first file; with several, the whole corpus is meant.
        let corpus = files.count == 1 ? "" : "the corpus (\(files.count) files) "
        if summary.documents == 0 {
            throw .invalidData(path: files[0], line: 1, reason: corpus + "holds no text (empty, or only blank lines)")
        }
        summary.chunks = summary.tokens / length
        if summary.chunks == 0 {
            throw .invalidData(path: files[0], line: 1, reason: corpus + "holds \(summary.tokens) tokens, fewer than one chunk of \(length) (lower --input-length or add text)")
        }
        return summary
    }
}
