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
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw .missingFile(path: path) }
            throw .unreadableFile(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            throw .unreadableFile(path: path, reason: "is a directory, not a text file")
        }
        return try readAll(fd, name: path)
    }

    /// Reads standard input until end of file.
    public static func standardInput() throws(T5Error) -> [UInt8] {
        try readAll(STDIN_FILENO, name: standardInputName)
    }

    /// The lines of `bytes` as text, each with its 1-based number; `name` names the source in errors.
    /// Throws `.invalidData` naming the first line that is not valid UTF-8.
    public static func lines(_ bytes: [UInt8], name: String) throws(T5Error) -> [(number: Int, text: String)] {
        var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var result = [(number: Int, text: String)]()
        var number = 0
        while start < bytes.count {
            let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
            var end = newline
            if end > start && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            number += 1
            guard let text = String(validating: bytes[start..<end], as: UTF8.self) else {
                throw .invalidData(path: name, line: number, reason: "not valid UTF-8 text")
            }
            result.append((number, text))
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
