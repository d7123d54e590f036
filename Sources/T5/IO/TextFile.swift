import Foundation

/// The bytes and lines of a text input: a regular file, a FIFO, a device such as `/dev/stdin`, or standard
/// input. One reader for every command and data file, so all of them agree on what a line is (a UTF-8 byte
/// order mark dropped, `\n` or `\r\n` ends a line, the newline after the last line optional) and refuse the
/// same things (bytes that are not UTF-8, named with the line; a path that cannot be read, with the
/// system's reason).
public enum TextFile {
    /// The name standard input has in messages.
    public static let standardInputName = "stdin"

    /// Reads everything `path` yields until end of file, with `read(2)` so pipes, FIFOs and devices work as
    /// regular files do. Throws `.missingFile`, or `.unreadableFile` with the system's reason (a directory,
    /// no permission, an I/O error).
    public static func bytes(path: String) throws(T5Error) -> [UInt8] {
        let fd = try openForReading(path)
        defer { close(fd) }
        return try readAll(fd, name: path)
    }

    /// Opens `path` for reading; the caller closes it. A missing path, a directory or an unreadable one
    /// throws with the system's reason.
    static func openForReading(_ path: String) throws(T5Error) -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw .missingFile(path: path) }
            throw .unreadableFile(path: path, reason: String(cString: strerror(code)))
        }
        var info = stat()
        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw .unreadableFile(path: path, reason: "is a directory, not a text file")
        }
        return fd
    }

    /// The text of one line, `bytes[range]` without its `\n`: a trailing `\r` dropped, a byte order mark
    /// dropped when `isFirst`; `.invalidData` naming `name` and `number` when it is not UTF-8.
    static func line(_ bytes: [UInt8], _ range: Range<Int>, isFirst: Bool, number: Int, name: String) throws(T5Error) -> String {
        var lower = range.lowerBound, upper = range.upperBound
        if isFirst && bytes[lower..<upper].starts(with: [0xEF, 0xBB, 0xBF]) { lower += 3 }
        if upper > lower && bytes[upper - 1] == UInt8(ascii: "\r") { upper -= 1 }
        guard let text = String(validating: bytes[lower..<upper], as: UTF8.self) else {
            throw .invalidData(path: name, line: number, reason: "not valid UTF-8 text")
        }
        return text
    }

    /// Reads standard input until end of file.
    public static func standardInput() throws(T5Error) -> [UInt8] {
        try readAll(STDIN_FILENO, name: standardInputName)
    }

    /// The lines of `bytes` as text, each with its 1-based number; `name` names the source in errors.
    /// Throws `.invalidData` naming the first line that is not valid UTF-8.
    public static func lines(_ bytes: [UInt8], name: String) throws(T5Error) -> [(number: Int, text: String)] {
        var start = 0
        var result = [(number: Int, text: String)]()
        while start < bytes.count {
            let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
            let number = result.count + 1
            result.append((number, try line(bytes, start..<newline, isFirst: number == 1, number: number, name: name)))
            start = newline + 1
        }
        return result
    }

    /// True for a line holding nothing but spaces and tabs (and other ASCII whitespace).
    public static func isBlank(_ line: String) -> Bool {
        line.utf8.allSatisfy { $0 == 0x20 || (0x09...0x0D).contains($0) }
    }

    private static func readAll(_ fd: Int32, name: String) throws(T5Error) -> [UInt8] {
        var result = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { return result }
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EISDIR { throw .unreadableFile(path: name, reason: "is a directory, not a text file") }
                throw .unreadableFile(path: name, reason: String(cString: strerror(code)))
            }
            result.append(contentsOf: chunk[0..<n])
        }
    }
}
