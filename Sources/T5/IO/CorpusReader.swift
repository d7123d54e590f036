import Foundation

/// How a corpus file holds its documents.
public enum CorpusFormat: Sendable, Equatable {
    /// Plain text: documents separated by blank lines (their lines joined by `\n`), or one document per line.
    case text(onePerLine: Bool)
    /// JSON Lines: one object per line with a string field `"text"`.
    case jsonLines

    /// The format of `path` by its extension, a `.gz` suffix looked through: `.jsonl`, `.json`, `.ndjson`
    /// are JSON Lines, anything else text.
    public static func of(_ path: String, onePerLine: Bool) -> CorpusFormat {
        var name = path.lowercased()
        if name.hasSuffix(".gz") { name.removeLast(3) }
        switch (name as NSString).pathExtension {
        case "jsonl", "json", "ndjson": return .jsonLines
        default: return .text(onePerLine: onePerLine)
        }
    }
}

/// One document of a corpus and where it starts.
public struct CorpusDocument: Sendable, Equatable {
    public var text: String
    /// Byte offset of its first line in the (uncompressed) file.
    public var offset: Int
    /// 1-based number of its first line.
    public var line: Int
}

/// Streams the documents of one corpus file through `CorpusBytes`'s fixed buffer, with `TextFile`'s rules for
/// lines (a byte order mark dropped, `\n` or `\r\n`, bytes that are not UTF-8 refused naming the line and the
/// byte offset). Only the current line and document are held, never the file.
public final class CorpusReader {
    public let path: String
    public let format: CorpusFormat
    private let bytes: CorpusBytes
    private var buffer: [UInt8]
    private var start = 0, end = 0
    private var atEnd = false
    /// The offset and number of the next line to read.
    public private(set) var offset: Int
    public private(set) var line: Int

    /// Opens `path`; reading starts at byte `offset`, the start of line `line` (a position `CorpusDocument`
    /// gave, for resuming).
    public init(path: String, format: CorpusFormat, offset: Int = 0, line: Int = 1) throws(T5Error) {
        self.path = path
        self.format = format
        bytes = try CorpusBytes(path: path)
        buffer = [UInt8](repeating: 0, count: CorpusBytes.bufferSize)
        if offset > 0 { try bytes.skip(to: offset) }
        self.offset = offset
        self.line = line
    }

    /// The next document, nil at the end of the file.
    public func next() throws(T5Error) -> CorpusDocument? {
        switch format {
        case .jsonLines:
            while let (text, at, number) = try nextLine() {
                if TextFile.isBlank(text) { continue }
                return CorpusDocument(text: try Self.jsonText(text, path: path, line: number), offset: at, line: number)
            }
            return nil
        case .text(let onePerLine):
            var document: CorpusDocument?
            while let (text, at, number) = try nextLine() {
                if TextFile.isBlank(text) {
                    if document != nil && !onePerLine { return document }
                    continue
                }
                if onePerLine { return CorpusDocument(text: text, offset: at, line: number) }
                if document == nil {
                    document = CorpusDocument(text: text, offset: at, line: number)
                } else {
                    document!.text += "\n" + text
                }
            }
            return document
        }
    }

    static func jsonText(_ text: String, path: String, line: Int) throws(T5Error) -> String {
        let value = try JSONValue.parse(text, path: path, line: line)
        guard case .object(let object) = value else {
            throw .invalidData(path: path, line: line, reason: "expected a JSON object with \"text\", found \(value.typeName)")
        }
        guard let found = object["text"] else { throw .invalidData(path: path, line: line, reason: "missing field \"text\"") }
        guard case .string(let s) = found else {
            throw .invalidData(path: path, line: line, reason: "field \"text\" must be a string, found \(found.typeName)")
        }
        return s
    }

    /// The next line as text with its offset and number; nil at the end.
    private func nextLine() throws(T5Error) -> (String, Int, Int)? {
        while true {
            if let newline = buffer[start..<end].firstIndex(of: UInt8(ascii: "\n")) {
                return try take(upTo: newline, consumed: newline + 1 - start)
            }
            if atEnd {
                if start == end { return nil }
                return try take(upTo: end, consumed: end - start)
            }
            // Keep the partial line, and grow only for a line longer than the buffer.
            if start > 0 {
                buffer.withUnsafeMutableBytes { b in
                    let base = b.baseAddress!
                    memmove(base, base + start, end - start)
                }
                end -= start
                start = 0
            }
            if end == buffer.count { buffer.append(contentsOf: repeatElement(0, count: buffer.count)) }
            let n = try buffer.withUnsafeMutableBytes { b in
                Result { () throws(T5Error) in try bytes.read(into: UnsafeMutableRawBufferPointer(rebasing: b[end...])) }
            }.get()
            if n == 0 { atEnd = true }
            end += n
        }
    }

    private func take(upTo stop: Int, consumed: Int) throws(T5Error) -> (String, Int, Int) {
        let at = offset, number = line
        var lower = start, upper = stop
        if at == 0 && buffer[lower..<upper].starts(with: [0xEF, 0xBB, 0xBF]) { lower += 3 }
        if upper > lower && buffer[upper - 1] == UInt8(ascii: "\r") { upper -= 1 }
        guard let text = String(validating: buffer[lower..<upper], as: UTF8.self) else {
            var valid = lower
            // The first byte where decoding fails, for the message.
            var iterator = buffer[lower..<upper].makeIterator()
            var decoder = UTF8()
            decode: while true {
                switch decoder.decode(&iterator) {
                case .scalarValue(let scalar): valid += UTF8.width(scalar)
                case .emptyInput, .error: break decode
                }
            }
            throw .invalidData(path: path, line: number, reason: "not valid UTF-8 text (byte offset \(at + valid - start))")
        }
        start += consumed
        offset += consumed
        line += 1
        return (text, at, number)
    }
}
