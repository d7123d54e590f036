import T5
import Yams

/// A YAML document as the JSON values a search space is read from: mappings (keys in order), sequences, and
/// scalars resolved by YAML's core schema (`1e-5` a float, `8` an int, `true` a bool, `~` null).
enum YAMLValue {
    static func json(_ node: Node, path: String) throws(T5Error) -> JSONValue {
        switch node {
        case .mapping(let mapping):
            var object = JSONObject()
            for (key, value) in mapping {
                guard let name = key.string else { throw .invalidOption(name: "--space", reason: "\(path): a mapping key is not a string") }
                object[name] = try json(value, path: path)
            }
            return .object(object)
        case .sequence(let sequence):
            var values = [JSONValue]()
            for value in sequence { values.append(try json(value, path: path)) }
            return .array(values)
        case .scalar(let scalar):
            if scalar.style == .plain {
                // Numbers as JSON reads them too: YAML 1.1's float pattern wants a dot, and would keep `1e-5` a string.
                if let b = node.bool { return .bool(b) }
                if let i = Int(scalar.string) { return .integer(i) }
                if let x = Double(scalar.string), x.isFinite { return .number(x) }
                if node.null != nil { return .null }
            }
            return .string(scalar.string)
        case .alias:
            throw .invalidOption(name: "--space", reason: "\(path): YAML aliases are not supported in a space")
        }
    }
}
