import Foundation

/// Reads the lines of a file, a pipe or a terminal as they arrive, with `TextFile`'s rules (a UTF-8 byte
/// order mark dropped, `\n` or `\r\n` ends a line, bytes that are not UTF-8 refused with their line), so that
/// a command can answer each line before the next one is written: `t5 generate` as a filter in a pipeline, or
/// typed at.
public final class LineReader {
    public let name: String
    private let fd: Int32
    private let ownsDescriptor: Bool
    private var buffer: [UInt8] = []
    private var start = 0
    private var number = 0
    private var atEnd = false

    /// Standard input when `path` is nil or `-`, else the file at `path`.
    public init(path: String?) throws(T5Error) {
        guard let path, path != "-" else {
            name = TextFile.standardInputName
            fd = STDIN_FILENO
            ownsDescriptor = false
            return
        }
        name = path
        fd = try TextFile.openForReading(path)
        ownsDescriptor = true
    }

    deinit {
        if ownsDescriptor { close(fd) }
    }

    /// The complete lines already read, at most `limit`, waiting for more input only when none is complete;
    /// each with its 1-based number. Nil once the input has ended and every line was returned.
    public func nextLines(limit: Int) throws(T5Error) -> [(number: Int, text: String)]? {
        var lines: [(number: Int, text: String)] = []
        while lines.isEmpty {
            while lines.count < max(limit, 1), let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                lines.append(try decode(start..<newline))
                start = newline + 1
            }
            if !lines.isEmpty { break }
            if atEnd {
                guard start < buffer.count else { return nil }
                lines.append(try decode(start..<buffer.count))
                start = buffer.count
                break
            }
            try fill()
        }
        if start > 1 << 16 {
            buffer.removeFirst(start)
            start = 0
        }
        return lines
    }

    private func decode(_ range: Range<Int>) throws(T5Error) -> (number: Int, text: String) {
        number += 1
        return (number, try TextFile.line(buffer, range, isFirst: number == 1, number: number, name: name))
    }

    /// One `read(2)`: whatever is available, blocking until something is (or the input ends).
    private func fill() throws(T5Error) {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                buffer.append(contentsOf: chunk[0..<n])
                return
            }
            if n == 0 {
                atEnd = true
                return
            }
            let code = errno
            if code == EINTR { continue }
            if code == EISDIR { throw .unreadableFile(path: name, reason: "is a directory, not a text file") }
            throw .unreadableFile(path: name, reason: String(cString: strerror(code)))
        }
    }
}
