/// What the T5 tokenizer needs from a SentencePiece `ModelProto` (`spiece.model`) that
/// SentencePiece's C++ API does not expose: `normalizer_spec.precompiled_charsmap` and which
/// pieces are USER_DEFINED. Read straight from the protobuf wire format, since Debian's
/// libsentencepiece-dev ships no generated proto headers. The pieces are also read, so that
/// `T5Tokenizer` can check they are the ones SentencePiece loaded.
///
/// Field numbers are those of sentencepiece_model.proto:
/// `ModelProto { repeated SentencePiece pieces = 1; NormalizerSpec normalizer_spec = 3; ... }`,
/// `SentencePiece { string piece = 1; float score = 2; Type type = 3; }`,
/// `NormalizerSpec { string name = 1; bytes precompiled_charsmap = 2; ... }`.
/// Other fields are skipped (the whitespace options of the normalizer spec, for instance, do not
/// matter: transformers' T5Tokenizer ignores them).
struct SentencePieceModel {
    /// `SentencePiece.Type`.
    enum PieceType: UInt64 {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    struct Piece {
        /// The piece text (valid UTF-8, checked on load).
        var text: String
        var score: Float
        var type: PieceType
    }

    /// A malformed file; `reason` says where.
    struct FormatError: Error {
        var reason: String
    }

    /// Every piece, in id order.
    private(set) var pieces: [Piece] = []
    /// `normalizer_spec.precompiled_charsmap`; empty when the model has none (identity normalization).
    private(set) var precompiledCharsmap: [UInt8] = []

    init(bytes: [UInt8]) throws(FormatError) {
        var reader = ProtoReader(bytes[...])
        while !reader.isAtEnd {
            let (field, wireType) = try reader.readKey()
            switch (field, wireType) {
            case (1, .lengthDelimited):
                pieces.append(try Self.parsePiece(try reader.readLengthDelimited(), index: pieces.count))
            case (3, .lengthDelimited):
                var spec = ProtoReader(try reader.readLengthDelimited())
                while !spec.isAtEnd {
                    let (specField, specWireType) = try spec.readKey()
                    if specField == 2, specWireType == .lengthDelimited {
                        precompiledCharsmap = Array(try spec.readLengthDelimited())
                    } else {
                        try spec.skip(specWireType)
                    }
                }
            default:
                try reader.skip(wireType)
            }
        }
        if pieces.isEmpty {
            throw FormatError(reason: "no pieces (not a SentencePiece model)")
        }
    }

    private static func parsePiece(_ bytes: ArraySlice<UInt8>, index: Int) throws(FormatError) -> Piece {
        var reader = ProtoReader(bytes)
        var text: String?
        var score: Float = 0
        var type = PieceType.normal  // proto default
        while !reader.isAtEnd {
            let (field, wireType) = try reader.readKey()
            switch (field, wireType) {
            case (1, .lengthDelimited):
                let raw = try reader.readLengthDelimited()
                guard let decoded = String(validating: raw, as: UTF8.self) else {
                    throw FormatError(reason: "piece \(index) is not valid UTF-8")
                }
                text = decoded
            case (2, .fixed32):
                score = Float(bitPattern: try reader.readFixed32())
            case (3, .varint):
                let raw = try reader.readVarint()
                guard let decoded = PieceType(rawValue: raw) else {
                    throw FormatError(reason: "piece \(index) has unknown type \(raw)")
                }
                type = decoded
            default:
                try reader.skip(wireType)
            }
        }
        guard let text, !text.isEmpty else {
            throw FormatError(reason: "piece \(index) is empty")
        }
        return Piece(text: text, score: score, type: type)
    }
}

// MARK: - Wire format

enum ProtoWireType: UInt64 {
    case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
}

/// A bounds-checked reader of protobuf wire format.
struct ProtoReader {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { bytes.isEmpty }

    mutating func readVarint() throws(SentencePieceModel.FormatError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = bytes.popFirst() {
            if shift == 63, byte > 1 {
                throw SentencePieceModel.FormatError(reason: "varint overflows 64 bits")
            }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        throw SentencePieceModel.FormatError(reason: "truncated varint")
    }

    mutating func readKey() throws(SentencePieceModel.FormatError) -> (field: UInt64, wireType: ProtoWireType) {
        let key = try readVarint()
        guard let wireType = ProtoWireType(rawValue: key & 7), key >> 3 != 0 else {
            throw SentencePieceModel.FormatError(reason: "invalid field key \(key)")
        }
        return (key >> 3, wireType)
    }

    mutating func readLengthDelimited() throws(SentencePieceModel.FormatError) -> ArraySlice<UInt8> {
        let length = try readVarint()
        guard length <= UInt64(bytes.count) else {
            throw SentencePieceModel.FormatError(reason: "truncated field (length \(length), \(bytes.count) bytes left)")
        }
        let end = bytes.startIndex + Int(length)
        defer { bytes = bytes[end...] }
        return bytes[bytes.startIndex..<end]
    }

    mutating func readFixed32() throws(SentencePieceModel.FormatError) -> UInt32 {
        guard bytes.count >= 4 else {
            throw SentencePieceModel.FormatError(reason: "truncated fixed32")
        }
        var value: UInt32 = 0
        for shift in stride(from: 0, to: 32, by: 8) {
            value |= UInt32(bytes.removeFirst()) << UInt32(shift)
        }
        return value
    }

    mutating func skip(_ wireType: ProtoWireType) throws(SentencePieceModel.FormatError) {
        switch wireType {
        case .varint:
            _ = try readVarint()
        case .fixed64:
            guard bytes.count >= 8 else { throw SentencePieceModel.FormatError(reason: "truncated fixed64") }
            bytes.removeFirst(8)
        case .lengthDelimited:
            _ = try readLengthDelimited()
        case .fixed32:
            _ = try readFixed32()
        case .startGroup, .endGroup:
            // SentencePiece models never contain groups; treat them as corruption.
            throw SentencePieceModel.FormatError(reason: "unexpected protobuf group")
        }
    }
}
