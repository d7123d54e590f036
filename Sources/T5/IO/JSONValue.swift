import Foundation

/// A parsed JSON value that keeps what `JSONSerialization` loses and checkpoint files need:
/// object key order, integer-versus-float literals (`512` is an int, `512.0` is not, exactly as
/// Python and serde_json see them) and `Sendable` values a caller can pass back for writing.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A literal without fraction or exponent that fits in `Int`.
    case integer(Int)
    /// Any other number (including integers too large for `Int`, and `NaN`/`Infinity`
    /// when the parser allows Python's extensions).
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// A short name of the value's type for error messages ("a string", "null", ...).
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer: return "an integer"
        case .number: return "a non-integer number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// One `"key": value` pair of a JSON object.
public struct JSONMember: Sendable, Equatable {
    public var key: String
    public var value: JSONValue

    public init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }
}

/// A JSON object with unique keys in first-appearance order.
///
/// A duplicated key keeps its first position and its last value, which is what both
/// Python's `json.loads` and serde_json's `HashMap` do, so a file reads the same here.
public struct JSONObject: Sendable, Equatable {
    public private(set) var members: [JSONMember] = []
    private var index: [String: Int] = [:]

    public init() {}

    public init(_ pairs: [(String, JSONValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    public var keys: [String] { members.map(\.key) }
    public var count: Int { members.count }

    /// The value for `key`, or nil when absent. Setting nil removes the key.
    public subscript(key: String) -> JSONValue? {
        get { index[key].map { members[$0].value } }
        set {
            if let newValue {
                if let i = index[key] {
                    members[i].value = newValue
                } else {
                    index[key] = members.count
                    members.append(JSONMember(key: key, value: newValue))
                }
            } else if let i = index.removeValue(forKey: key) {
                members.remove(at: i)
                for j in i..<members.count { index[members[j].key] = j }
            }
        }
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.members == rhs.members
    }
}

/// Orders strings by their UTF-8 bytes: the order of Rust's `str::cmp` (safetensors' key order)
/// and of Python's `sorted` on code points (`json.dumps(sort_keys=True)`), independent of
/// Swift's Unicode-normalizing `String` comparison.
@inline(__always)
func utf8Precedes(_ a: String, _ b: String) -> Bool {
    a.utf8.lexicographicallyPrecedes(b.utf8)
}

extension JSONValue {
    /// Parses one JSON text (strict RFC 8259, as every file this runtime reads). Throws `.invalidData`
    /// naming `path` and `line`.
    public static func parse(_ text: String, path: String, line: Int) throws(T5Error) -> JSONValue {
        do {
            return try JSONParser.parse(Data(text.utf8))
        } catch {
            throw .invalidData(path: path, line: line, reason: "malformed JSON: \(error.description)")
        }
    }

    /// The JSON text of the value, compact, keys in their order.
    public var text: String {
        String(decoding: JSONWriter.serialize(self, style: .compact), as: UTF8.self)
    }
}
