import Foundation

/// Where one tensor lives inside a safetensors file.
struct SafeTensorsEntry: Sendable, Equatable {
    let dtype: SafeTensorsDType
    let shape: [Int]
    /// Byte range within the data section (which starts right after the header).
    let begin: Int
    let end: Int

    var elementCount: Int { shape.reduce(1, *) }
}

/// The validated header of one safetensors file.
///
/// Layout: 8-byte little-endian header length `n`, `n` bytes of UTF-8 JSON
/// (`{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}`),
/// then the data section. The checks mirror what the Python `safetensors` 0.8 library
/// (the reader transformers uses) enforces, so a file is accepted here iff it is accepted there:
/// header length at most 100 MB and inside the file, strict JSON with surrounding whitespace
/// allowed, every tensor with a known dtype, a shape of non-negative integers and exactly two
/// offsets, byte count = elements × dtype size, and the ranges, sorted by offset, tiling the
/// data section exactly from 0 to its end (no gaps, overlaps or trailing bytes). Alignment is
/// not required; a misaligned F32 tensor is simply copied instead of viewed.
struct SafeTensorsHeader: Sendable {
    /// The Python library's limit on the header size.
    static let maxHeaderLength = 100_000_000

    let entries: [String: SafeTensorsEntry]
    let metadata: [String: String]
    /// Offset of the data section from the start of the file (8 + header length).
    let dataStart: Int

    /// Parses and validates the file `bytes` (the whole file); `path` names it in errors.
    init(bytes: UnsafeRawBufferPointer, path: String) throws(T5Error) {
        func corrupt(_ reason: String) -> T5Error { .corruptCheckpoint(path: path, reason: reason) }

        guard bytes.count >= 8 else {
            throw corrupt("file is \(bytes.count) bytes, too short for the 8-byte header length")
        }
        let declared = bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard declared <= UInt64(SafeTensorsHeader.maxHeaderLength) else {
            throw corrupt("header length \(declared) is absurd (limit \(SafeTensorsHeader.maxHeaderLength) bytes)")
        }
        let headerLength = Int(declared)
        guard 8 + headerLength <= bytes.count else {
            throw corrupt("header length \(headerLength) runs past the end of the file (\(bytes.count) bytes)")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)])
        guard String(validating: headerBytes, as: UTF8.self) != nil else {
            throw corrupt("header is not valid UTF-8")
        }
        let root: JSONValue
        do {
            root = try JSONParser.parse(headerBytes)
        } catch {
            throw corrupt("header is not valid JSON: \(error.message) at header byte \(error.offset)")
        }
        guard case .object(let object) = root else {
            throw corrupt("header is \(root.typeName), not a JSON object")
        }

        let dataStart = 8 + headerLength
        let dataSize = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var entries: [String: SafeTensorsEntry] = [:]
        for member in object.members {
            let name = member.key
            if name == "__metadata__" {
                switch member.value {
                case .null:
                    break
                case .object(let fields):
                    for field in fields.members {
                        guard case .string(let value) = field.value else {
                            throw corrupt("__metadata__ entry '\(field.key)' is \(field.value.typeName), not a string")
                        }
                        metadata[field.key] = value
                    }
                default:
                    throw corrupt("__metadata__ is \(member.value.typeName), not an object of strings")
                }
                continue
            }
            entries[name] = try Self.parseEntry(name: name, value: member.value, corrupt: corrupt)
        }

        // Sort by (begin, end) as the Python library does, then require the ranges to tile the
        // data section. Ties (zero-size tensors) are ordered by name only to make errors stable.
        let ordered = entries.sorted { a, b in
            (a.value.begin, a.value.end) != (b.value.begin, b.value.end)
                ? (a.value.begin, a.value.end) < (b.value.begin, b.value.end)
                : utf8Precedes(a.key, b.key)
        }
        var covered = 0
        var previous: String?
        for (name, entry) in ordered {
            let range = "data_offsets [\(entry.begin), \(entry.end)]"
            guard entry.begin <= entry.end else {
                throw corrupt("tensor '\(name)' has \(range) with begin > end")
            }
            guard entry.end <= dataSize else {
                throw corrupt("tensor '\(name)' has \(range) past the end of the data section (\(dataSize) bytes)")
            }
            guard entry.begin == covered else {
                if let previous {
                    let relation = entry.begin < covered ? "overlaps" : "leaves a gap after"
                    throw corrupt("tensor '\(name)' with \(range) \(relation) tensor '\(previous)' ending at \(covered); tensor data must be contiguous")
                }
                throw corrupt("tensor '\(name)' with \(range) leaves a gap at the start of the data section; tensor data must start at 0")
            }
            let expectedBytes = try Self.byteCount(name: name, entry: entry, corrupt: corrupt)
            guard entry.end - entry.begin == expectedBytes else {
                throw corrupt("tensor '\(name)' has \(entry.end - entry.begin) bytes (\(range)) but shape \(entry.shape) of \(entry.dtype.rawValue) needs \(expectedBytes)")
            }
            covered = entry.end
            previous = name
        }
        guard covered == dataSize else {
            throw corrupt("data section has \(dataSize) bytes but the tensors cover only \(covered)")
        }
        self.entries = entries
        self.metadata = metadata
        self.dataStart = dataStart
    }

    private static func parseEntry(name: String, value: JSONValue, corrupt: (String) -> T5Error) throws(T5Error) -> SafeTensorsEntry {
        guard case .object(let fields) = value else {
            throw corrupt("tensor '\(name)' is \(value.typeName), not an object")
        }
        guard let dtypeValue = fields["dtype"] else { throw corrupt("tensor '\(name)' has no dtype") }
        guard let shapeValue = fields["shape"] else { throw corrupt("tensor '\(name)' has no shape") }
        guard let offsetsValue = fields["data_offsets"] else { throw corrupt("tensor '\(name)' has no data_offsets") }

        guard case .string(let dtypeName) = dtypeValue else {
            throw corrupt("tensor '\(name)' dtype is \(dtypeValue.typeName), not a string")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw corrupt("tensor '\(name)' has unknown dtype '\(dtypeName)'")
        }
        guard case .array(let dims) = shapeValue else {
            throw corrupt("tensor '\(name)' shape is \(shapeValue.typeName), not an array")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        for dim in dims {
            guard case .integer(let size) = dim, size >= 0 else {
                throw corrupt("tensor '\(name)' shape \(describe(dims)) is not a list of non-negative integers")
            }
            shape.append(size)
        }
        guard case .array(let offsets) = offsetsValue, offsets.count == 2,
              case .integer(let begin) = offsets[0], begin >= 0,
              case .integer(let end) = offsets[1], end >= 0
        else {
            throw corrupt("tensor '\(name)' data_offsets \(describe(offsetsValue)) is not two non-negative integers [begin, end]")
        }
        return SafeTensorsEntry(dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// Bytes needed by the entry's shape and dtype, rejecting overflow and sub-byte totals.
    private static func byteCount(name: String, entry: SafeTensorsEntry, corrupt: (String) -> T5Error) throws(T5Error) -> Int {
        var elements = 1
        for dim in entry.shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw corrupt("tensor '\(name)' shape \(entry.shape) is too large") }
            elements = product
        }
        let (bits, overflow) = elements.multipliedReportingOverflow(by: entry.dtype.bitWidth)
        guard !overflow else { throw corrupt("tensor '\(name)' shape \(entry.shape) is too large") }
        guard bits % 8 == 0 else {
            throw corrupt("tensor '\(name)' with shape \(entry.shape) of \(entry.dtype.rawValue) does not end on a byte boundary")
        }
        return bits / 8
    }

    private static func describe(_ value: [JSONValue]) -> String {
        describe(.array(value))
    }

    private static func describe(_ value: JSONValue) -> String {
        let text = String(decoding: JSONWriter.serialize(value, style: .compact), as: UTF8.self)
        return text.count > 60 ? String(text.prefix(57)) + "..." : text
    }
}
