import Foundation

/// Typed access to the keys of a JSON configuration file (config.json, generation_config.json) with
/// transformers' defaults and our error messages.
struct ConfigReader {
    let object: JSONObject
    let path: String

    /// Reads the JSON value in the file at `url`.
    static func json(_ url: URL) throws(T5Error) -> JSONValue {
        let bytes = try TextFile.bytes(path: url.path)
        do {
            return try JSONParser.parse(Data(bytes))
        } catch {
            throw .invalidConfig(path: url.path, reason: "malformed JSON: \(error.description)")
        }
    }

    /// Reads the JSON object in the file at `url`.
    static func load(_ url: URL) throws(T5Error) -> ConfigReader {
        guard case .object(let o) = try json(url) else { throw .invalidConfig(path: url.path, reason: "the top level is not an object") }
        return ConfigReader(object: o, path: url.path)
    }

    func invalid(_ key: String, _ reason: String) -> T5Error {
        .invalidConfig(path: path, reason: "\(key): \(reason)")
    }

    private func wrongType(_ key: String, _ expected: String, _ found: JSONValue) -> T5Error {
        invalid(key, "expected \(expected), found \(found.typeName)")
    }

    /// An int field; absent → `default`, null and non-integers → error (transformers' strict check).
    func int(_ key: String, default value: Int) throws(T5Error) -> Int {
        guard let found = object[key] else { return value }
        guard case .integer(let i) = found else { throw wrongType(key, "an integer", found) }
        return i
    }

    /// An `int | None` field: absent or null → nil.
    func optionalInt(_ key: String) throws(T5Error) -> Int? {
        guard let found = object[key] else { return nil }
        switch found {
        case .null: return nil
        case .integer(let i): return i
        default: throw wrongType(key, "an integer or null", found)
        }
    }

    /// A float field; integers are accepted, null is not.
    func float(_ key: String, default value: Float) throws(T5Error) -> Float {
        guard let found = object[key] else { return value }
        switch found {
        case .integer(let i): return Float(i)
        case .number(let d): return Float(d)
        default: throw wrongType(key, "a number", found)
        }
    }

    /// A `float | None` field: absent or null → nil; integers are accepted.
    func optionalFloat(_ key: String) throws(T5Error) -> Float? {
        guard let found = object[key] else { return nil }
        switch found {
        case .null: return nil
        case .integer(let i): return Float(i)
        case .number(let d): return Float(d)
        default: throw wrongType(key, "a number or null", found)
        }
    }

    func string(_ key: String, default value: String) throws(T5Error) -> String {
        guard let found = object[key] else { return value }
        guard case .string(let s) = found else { throw wrongType(key, "a string", found) }
        return s
    }

    /// An optional boolean: absent → nil, null → `nullMeans`.
    func optionalBool(_ key: String, nullMeans: Bool?) throws(T5Error) -> Bool? {
        guard let found = object[key] else { return nil }
        switch found {
        case .bool(let b): return b
        case .null: return nullMeans
        default: throw wrongType(key, "true or false", found)
        }
    }

    /// `int | list[int] | None`: absent or null → nil.
    func intOrIntList(_ key: String) throws(T5Error) -> [Int]? {
        guard let found = object[key] else { return nil }
        switch found {
        case .null: return nil
        case .integer(let i): return [i]
        case .array(let elements):
            var ids: [Int] = []
            for element in elements {
                guard case .integer(let i) = element else { throw wrongType(key, "a list of integers", element) }
                ids.append(i)
            }
            guard !ids.isEmpty else { throw invalid(key, "empty list") }
            return ids
        default:
            throw wrongType(key, "an integer or a list of integers", found)
        }
    }
}
