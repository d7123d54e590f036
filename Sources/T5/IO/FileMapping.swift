import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped into memory, unmapped when the last reference goes away.
///
/// The mapping is `PROT_READ | PROT_WRITE` with `MAP_PRIVATE`: tensors viewing it can be
/// updated in place by training, and each written page becomes a private copy, so the file on
/// disk never changes. Pages are read from disk only when touched, so opening a large checkpoint
/// costs nothing until its tensors are used. Our writers replace files by rename, never in place,
/// so a mapping keeps seeing the file it opened even if that path is rewritten meanwhile.
public final class FileMapping: @unchecked Sendable {
    /// The mapped file's path, for error messages.
    public let path: String
    /// The file's size in bytes.
    public let count: Int
    /// Start of the mapping; nil for an empty file (mmap cannot map zero bytes).
    private let base: UnsafeMutableRawPointer?

    /// Maps the file at `url`.
    /// Throws `.missingFile` when it does not exist and `.unreadableFile` when it cannot be
    /// opened, is not a regular file, or cannot be mapped.
    public init(url: URL) throws(T5Error) {
        let path = url.path
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let code = errno
            if code == ENOENT || code == ENOTDIR { throw .missingFile(path: path) }
            throw .unreadableFile(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(fd) }

        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw .unreadableFile(path: path, reason: String(cString: strerror(errno)))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            let what = (info.st_mode & S_IFMT) == S_IFDIR ? "is a directory" : "not a regular file"
            throw .unreadableFile(path: path, reason: what)
        }
        guard let size = Int(exactly: info.st_size) else {
            throw .unreadableFile(path: path, reason: "file size \(info.st_size) is not addressable")
        }
        count = size
        if size == 0 {
            base = nil
            return
        }
        // The descriptor can be closed right after mapping; the mapping keeps the file alive.
        let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw .unreadableFile(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = mapped
    }

    deinit {
        if let base { munmap(base, count) }
    }

    /// The mapped bytes. Valid for as long as this object is alive.
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base, count: count)
    }

    /// Whether `pointer` points into this mapping (used to prove tensors are zero-copy views).
    public func contains(_ pointer: UnsafeRawPointer) -> Bool {
        guard let base else { return false }
        let start = UnsafeRawPointer(base)
        return pointer >= start && pointer < start + count
    }
}
