import Foundation

/// Writes fp32 tensors as one safetensors file, byte-for-byte as the Python library's
/// `save_file(tensors, path, metadata={"format": "pt"})` would (what transformers'
/// `save_pretrained` produces), and atomically (see `AtomicFile`).
///
/// Layout, as in safetensors' Rust `prepare`/`serialize`: the header is serde_json compact JSON
/// with `__metadata__` first and then the tensors sorted by name (all share one dtype, so the
/// library's "descending dtype, then name" order is name order), padded with spaces to a
/// multiple of 8 so the data section starts 8-byte aligned; data follows contiguously in the
/// same order. Sharded output is not supported.
public enum SafeTensorsWriter {
    /// The element type the values are stored as.
    public enum StoredType: String, Sendable, CaseIterable {
        /// The exact fp32 values.
        case f32 = "F32"
        /// Rounded to nearest even fp16 (NaN → 0x7E00 with its sign, as PyTorch's `.half()`).
        case f16 = "F16"
        /// Rounded to nearest even bf16 (NaN → 0x7FC0, as PyTorch's `.bfloat16()`).
        case bf16 = "BF16"

        var byteWidth: Int { self == .f32 ? 4 : 2 }
    }

    /// Writes `tensors` (name → tensor) to `url`, replacing any existing file only once the new
    /// one is complete. Throws `.writeFailed` naming `url`.
    public static func write(
        _ tensors: [String: Tensor],
        to url: URL,
        as storedType: StoredType = .f32,
        metadata: [String: String] = ["format": "pt"]
    ) throws(T5Error) {
        if tensors["__metadata__"] != nil {
            throw .writeFailed(path: url.path, reason: "'__metadata__' is reserved and cannot name a tensor")
        }
        let ordered = tensors.sorted { utf8Precedes($0.key, $1.key) }
        let header = headerBytes(for: ordered.map { ($0.key, $0.value.shape) }, storedType: storedType, metadata: metadata)

        try AtomicFile.write(to: url) { (sink: AtomicFile.Sink) throws(T5Error) in
            var length = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &length) { (raw) throws(T5Error) in try sink.write(raw) }
            try sink.write(header)
            for (_, tensor) in ordered {
                try writeValues(of: tensor, as: storedType, to: sink)
            }
        }
    }

    /// The padded JSON header for tensors of the given names and shapes, in that order.
    static func headerBytes(for tensors: [(String, [Int])], storedType: StoredType, metadata: [String: String]) -> [UInt8] {
        headerBytes(for: tensors.map { ($0.0, storedType.rawValue, $0.1, $0.1.reduce(1, *) * storedType.byteWidth) }, metadata: metadata)
    }

    /// A tensor already in its stored form: dtype name (`"I8"`, `"BF16"`, ...), shape and little-endian bytes.
    public struct RawTensor {
        public var dtype: String
        public var shape: [Int]
        public var bytes: UnsafeRawBufferPointer
        public init(dtype: String, shape: [Int], bytes: UnsafeRawBufferPointer) {
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }
    }

    /// Writes tensors given as raw stored bytes of any dtype (used for bf16 / int8 checkpoints), in name
    /// order, atomically like `write`.
    public static func writeRaw(_ tensors: [String: RawTensor], to url: URL, metadata: [String: String] = ["format": "pt"]) throws(T5Error) {
        let ordered = tensors.sorted { utf8Precedes($0.key, $1.key) }
        let header = headerBytes(for: ordered.map { ($0.key, $0.value.dtype, $0.value.shape, $0.value.bytes.count) }, metadata: metadata)
        try AtomicFile.write(to: url) { (sink: AtomicFile.Sink) throws(T5Error) in
            var length = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &length) { (raw) throws(T5Error) in try sink.write(raw) }
            try sink.write(header)
            for (_, tensor) in ordered { try sink.write(tensor.bytes) }
        }
    }

    /// The padded JSON header for (name, dtype, shape, byte count) entries, in that order.
    static func headerBytes(for tensors: [(String, String, [Int], Int)], metadata: [String: String]) -> [UInt8] {
        var root = JSONObject()
        // serde serializes the metadata HashMap in hash order; with more than one entry the
        // Python output is not even deterministic, so sorted order is as good as any.
        if !metadata.isEmpty {
            var fields = JSONObject()
            for key in metadata.keys.sorted(by: utf8Precedes) { fields[key] = .string(metadata[key] ?? "") }
            root["__metadata__"] = .object(fields)
        }
        var offset = 0
        for (name, dtype, shape, bytes) in tensors {
            root[name] = .object(JSONObject([
                ("dtype", .string(dtype)),
                ("shape", .array(shape.map { .integer($0) })),
                ("data_offsets", .array([.integer(offset), .integer(offset + bytes)])),
            ]))
            offset += bytes
        }
        var header = JSONWriter.serialize(.object(root), style: .compact)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
        return header
    }

    /// Streams one tensor's values; fp32 straight from its memory, 16-bit types through a
    /// bounded conversion buffer so no full-size copy is ever made.
    private static func writeValues(of tensor: Tensor, as storedType: StoredType, to sink: AtomicFile.Sink) throws(T5Error) {
        let count = tensor.count
        if storedType == .f32 {
            try sink.write(UnsafeRawBufferPointer(start: tensor.pointer, count: 4 * count))
            return
        }
        let chunk = 1 << 16
        var buffer = [UInt16](repeating: 0, count: min(chunk, count))
        var start = 0
        while start < count {
            let n = min(chunk, count - start)
            let source = tensor.pointer + start
            buffer.withUnsafeMutableBufferPointer { out in
                if storedType == .f16 {
                    for i in 0..<n { out[i] = HalfConversion.halfBits(from: source[i]).littleEndian }
                } else {
                    for i in 0..<n { out[i] = HalfConversion.bfloat16Bits(from: source[i]).littleEndian }
                }
            }
            let result: Result<Void, T5Error> = buffer.withUnsafeBytes { raw in
                Result { () throws(T5Error) in try sink.write(UnsafeRawBufferPointer(rebasing: raw[0..<(2 * n)])) }
            }
            try result.get()
            start += n
        }
    }
}
