import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Replaces files atomically: content goes to a temporary file in the destination's directory,
/// which is fsynced and then renamed over the destination. Readers (and a crash) see either the
/// old file or the complete new one, never a partial write; on failure the temporary file is
/// removed and the destination is untouched. Renaming (not rewriting) also keeps existing
/// memory mappings of the old file valid, so a model can be saved over the checkpoint it was
/// loaded from.
public enum AtomicFile {
    /// Writes `data` to `url` atomically. Throws `.writeFailed` naming `url`.
    public static func write(_ data: Data, to url: URL) throws(T5Error) {
        try write(to: url) { (sink: Sink) throws(T5Error) in
            let result: Result<Void, T5Error> = data.withUnsafeBytes { raw in
                Result { () throws(T5Error) in try sink.write(raw) }
            }
            try result.get()
        }
    }

    /// Streams content into a temporary file through `body`, then renames it over `url`.
    /// If `body` throws, the temporary file is removed and its error is rethrown unchanged.
    public static func write(to url: URL, _ body: (Sink) throws(T5Error) -> Void) throws(T5Error) {
        let path = url.path
        let directory = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        let tempPath = (directory as NSString).appendingPathComponent(".\(name).tmp-\(getpid())-\(UInt32.random(in: .min ... .max))")

        // 0o666 minus the umask: the permissions any newly created file would get.
        let fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else {
            throw .writeFailed(path: path, reason: "cannot create a temporary file in \(directory): \(String(cString: strerror(errno)))")
        }
        let sink = Sink(fd: fd, path: path)
        var succeeded = false
        defer {
            if !succeeded {
                if sink.isOpen { close(fd) }
                unlink(tempPath)
            }
        }
        try body(sink)
        guard fsync(fd) == 0 else {
            throw .writeFailed(path: path, reason: "fsync failed: \(String(cString: strerror(errno)))")
        }
        sink.isOpen = false
        guard close(fd) == 0 else {
            throw .writeFailed(path: path, reason: "close failed: \(String(cString: strerror(errno)))")
        }
        guard rename(tempPath, path) == 0 else {
            throw .writeFailed(path: path, reason: "cannot replace the file: \(String(cString: strerror(errno)))")
        }
        succeeded = true
        // Make the rename itself durable. Best effort: the new file is already in place, so a
        // failure here must not be reported as a failed write.
        let directoryFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// The open temporary file `AtomicFile.write(to:_:)` hands to its body.
    public final class Sink {
        fileprivate let fd: Int32
        fileprivate var isOpen = true
        /// The destination path, named in errors.
        private let path: String
        /// Bytes written so far.
        public private(set) var bytesWritten = 0

        fileprivate init(fd: Int32, path: String) {
            self.fd = fd
            self.path = path
        }

        /// Appends `bytes`, retrying short writes and interrupted calls.
        public func write(_ bytes: UnsafeRawBufferPointer) throws(T5Error) {
            guard var next = bytes.baseAddress else { return }
            var remaining = bytes.count
            while remaining > 0 {
                // Linux transfers at most 0x7ffff000 bytes per call anyway; ask for at most 1 GiB.
                let written = posixWrite(fd, next, min(remaining, 1 << 30))
                if written < 0 {
                    if errno == EINTR { continue }
                    throw .writeFailed(path: path, reason: String(cString: strerror(errno)))
                }
                if written == 0 {
                    throw .writeFailed(path: path, reason: "the disk accepted no more bytes")
                }
                next += written
                remaining -= written
                bytesWritten += written
            }
        }

        /// Appends the bytes of `array`.
        public func write(_ array: [UInt8]) throws(T5Error) {
            let result: Result<Void, T5Error> = array.withUnsafeBytes { raw in
                Result { () throws(T5Error) in try write(raw) }
            }
            try result.get()
        }
    }
}

/// The C `write(2)`, named so it does not collide with the `write` methods above.
@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #elseif canImport(Musl)
    return Musl.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}
