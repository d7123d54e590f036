import CZlib
import Foundation

/// The bytes of one corpus file, read through a fixed buffer: as stored, or inflated by zlib when the file
/// is gzip-compressed (`.gz`, or the gzip magic bytes 1f 8b). Memory stays at the buffers whatever the file
/// size, which is what lets a corpus far larger than RAM train.
final class CorpusBytes {
    let path: String
    private let fd: Int32
    private let gzip: Bool
    private var stream = z_stream()
    private var streamOpen = false
    /// Compressed bytes read and not yet inflated.
    private var input: [UInt8]
    private var inputStart = 0, inputEnd = 0
    private var inputAtEnd = false
    /// After a gzip member's end: the next bytes start another member (gzip allows several, `cat a.gz b.gz`).
    private var memberEnded = false
    /// Bytes delivered so far (of the uncompressed text).
    private(set) var offset = 0
    /// Compressed bytes consumed so far, for errors.
    private var compressedOffset = 0

    static let bufferSize = 1 << 16

    init(path: String) throws(T5Error) {
        self.path = path
        let fd = try TextFile.openForReading(path)
        self.fd = fd
        input = [UInt8](repeating: 0, count: Self.bufferSize)
        var magic = [UInt8](repeating: 0, count: 2)
        let n = magic.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 2, 0) }
        gzip = path.lowercased().hasSuffix(".gz") || (n == 2 && magic == [0x1F, 0x8B])
        if gzip {
            // windowBits 15 + 16: a gzip header and trailer (CRC-32 and length, checked by zlib).
            let status = inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
            guard status == Z_OK else {
                close(fd)
                throw .unreadableFile(path: path, reason: "zlib could not start (status \(status))")
            }
            streamOpen = true
        }
    }

    deinit {
        if streamOpen { inflateEnd(&stream) }
        close(fd)
    }

    /// Fills `buffer` with up to `buffer.count` bytes; 0 at the end of the file.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(T5Error) -> Int {
        let n = gzip ? try inflate(into: buffer) : try readRaw(into: buffer)
        offset += n
        return n
    }

    /// Skips to byte `target` of the (uncompressed) text: a seek for a plain file, reading and dropping for a
    /// compressed one.
    func skip(to target: Int) throws(T5Error) {
        precondition(target >= offset, "skipping backwards from \(offset) to \(target)")
        if !gzip {
            guard lseek(fd, off_t(target), SEEK_SET) == off_t(target) else {
                throw .unreadableFile(path: path, reason: "cannot seek to byte \(target): \(String(cString: strerror(errno)))")
            }
            offset = target
            return
        }
        var scratch = [UInt8](repeating: 0, count: Self.bufferSize)
        while offset < target {
            let want = min(scratch.count, target - offset)
            let n = try scratch.withUnsafeMutableBytes { b in
                Result { () throws(T5Error) in try read(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<want])) }
            }.get()
            if n == 0 { throw .unreadableFile(path: path, reason: "ends at byte \(offset), before byte \(target) where the run stopped (the file changed)") }
        }
    }

    private func readRaw(into buffer: UnsafeMutableRawBufferPointer) throws(T5Error) -> Int {
        while true {
            let n = Foundation.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw .unreadableFile(path: path, reason: String(cString: strerror(errno)))
        }
    }

    private func refill() throws(T5Error) {
        let n = try input.withUnsafeMutableBytes { b in Result { () throws(T5Error) in try readRaw(into: b) } }.get()
        inputStart = 0
        inputEnd = n
        if n == 0 { inputAtEnd = true }
    }

    private func corrupt(_ what: String) -> T5Error {
        .unreadableFile(path: path, reason: "corrupt gzip data at compressed byte \(compressedOffset): \(what)")
    }

    private func inflate(into buffer: UnsafeMutableRawBufferPointer) throws(T5Error) -> Int {
        while true {
            if inputStart == inputEnd && !inputAtEnd { try refill() }
            if memberEnded {
                // Another member follows, or the file ends cleanly.
                if inputStart == inputEnd { return 0 }
                inflateReset(&stream)
                memberEnded = false
            }
            if inputStart == inputEnd {
                throw corrupt("the file ends inside the compressed stream (truncated)")
            }
            let available = inputEnd - inputStart
            let (status, consumed, produced) = input.withUnsafeMutableBufferPointer { inBuf in
                stream.next_in = inBuf.baseAddress! + inputStart
                stream.avail_in = UInt32(available)
                stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
                stream.avail_out = UInt32(buffer.count)
                let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                return (status, available - Int(stream.avail_in), buffer.count - Int(stream.avail_out))
            }
            inputStart += consumed
            compressedOffset += consumed
            switch status {
            case Z_STREAM_END:
                memberEnded = true
                if produced > 0 { return produced }
            case Z_OK, Z_BUF_ERROR:
                if produced > 0 { return produced }
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                throw corrupt(message)
            }
        }
    }
}
