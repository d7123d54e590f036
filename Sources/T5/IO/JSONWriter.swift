import Foundation

/// Serializes `JSONValue` byte-for-byte like the two Python-side writers whose files we replace.
enum JSONWriter {
    enum Style {
        /// serde_json's `to_string`, used by the safetensors library for file headers:
        /// no whitespace, members in the given order, non-ASCII written as raw UTF-8.
        case compact
        /// Python's `json.dumps(obj, indent=2, sort_keys=True)`, which transformers uses for
        /// config.json: `", "`/`": "` separators, sorted keys, non-ASCII escaped as `\uXXXX`.
        case pythonIndented
    }

    static func serialize(_ value: JSONValue, style: Style) -> [UInt8] {
        var out: [UInt8] = []
        write(value, style: style, indent: 0, into: &out)
        return out
    }

    private static func write(_ value: JSONValue, style: Style, indent: Int, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: Array("null".utf8))
        case .bool(let b): out.append(contentsOf: Array((b ? "true" : "false").utf8))
        case .integer(let i): out.append(contentsOf: Array(String(i).utf8))
        case .number(let d) where !d.isFinite && style == .pythonIndented:
            // transformers' to_json_string (configuration_utils.py `_encode_special_floats`)
            // writes non-finite floats as {"__float__": "NaN" | "Infinity" | "-Infinity"}.
            write(.object(JSONObject([("__float__", .string(pythonRepr(d)))])), style: style, indent: indent, into: &out)
        case .number(let d): out.append(contentsOf: Array(pythonRepr(d).utf8))
        case .string(let s): writeString(s, asciiOnly: style == .pythonIndented, into: &out)
        case .array(let elements):
            guard !elements.isEmpty else { out.append(contentsOf: Array("[]".utf8)); return }
            out.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(style: style, indent: indent + 1, into: &out)
                write(element, style: style, indent: indent + 1, into: &out)
            }
            newline(style: style, indent: indent, into: &out)
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            guard object.count > 0 else { out.append(contentsOf: Array("{}".utf8)); return }
            var members = object.members
            if style == .pythonIndented { members.sort { utf8Precedes($0.key, $1.key) } }
            out.append(UInt8(ascii: "{"))
            for (i, member) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(style: style, indent: indent + 1, into: &out)
                writeString(member.key, asciiOnly: style == .pythonIndented, into: &out)
                out.append(UInt8(ascii: ":"))
                if style == .pythonIndented { out.append(UInt8(ascii: " ")) }
                write(member.value, style: style, indent: indent + 1, into: &out)
            }
            newline(style: style, indent: indent, into: &out)
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func newline(style: Style, indent: Int, into out: inout [UInt8]) {
        guard style == .pythonIndented else { return }
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * indent))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func appendUnicodeEscape(_ unit: UInt16, into out: inout [UInt8]) {
        out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u")])
        for shift in stride(from: 12, through: 0, by: -4) {
            out.append(hexDigits[Int((unit >> UInt16(shift)) & 0xF)])
        }
    }

    /// Both writers escape `"`, `\` and the short control escapes the same way; they differ in
    /// what else they escape: serde_json only the remaining control characters, Python
    /// (`ensure_ascii=True`) everything outside printable ASCII, as UTF-16 units.
    private static func writeString(_ s: String, asciiOnly: Bool, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case "\\": out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case "\n": out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case "\r": out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case "\t": out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case "\u{08}": out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case "\u{0C}": out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            default:
                if scalar.value < 0x20 || (asciiOnly && scalar.value >= 0x7F) {
                    for unit in String(scalar).utf16 { appendUnicodeEscape(unit, into: &out) }
                } else {
                    out.append(contentsOf: Array(String(scalar).utf8))
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Python's `repr(float)`: the shortest round-tripping digits (which Swift's `description`
    /// also produces), laid out in fixed notation when the decimal exponent is in [-4, 16) and in
    /// scientific notation (`1e-06`, `1.5e+16`) otherwise. Swift switches at 2^53 instead, so the
    /// digits are re-laid out here.
    static func pythonRepr(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        // Split Swift's shortest representation into sign, digit string and exponent.
        var text = Substring(d.magnitude.description)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = text[..<e]
        }
        var digits: String
        var pointPosition: Int  // digits before the decimal point
        if let dot = text.firstIndex(of: ".") {
            let integerPart = text[..<dot]
            digits = String(integerPart) + String(text[text.index(after: dot)...])
            pointPosition = integerPart.count
        } else {
            digits = String(text)
            pointPosition = digits.count
        }
        // Normalize: strip leading zeros (moving the point) and trailing zeros.
        while digits.count > 1, digits.first == "0" {
            digits.removeFirst()
            pointPosition -= 1
        }
        while digits.count > 1, digits.last == "0" { digits.removeLast() }
        let decimalExponent = pointPosition + exponent - 1  // scientific exponent of the first digit
        let sign = d < 0 ? "-" : ""
        if decimalExponent < -4 || decimalExponent >= 16 {
            let mantissa = digits.count == 1 ? digits : "\(digits.prefix(1)).\(digits.dropFirst())"
            let expSign = decimalExponent < 0 ? "-" : "+"
            let magnitude = abs(decimalExponent)
            let expDigits = magnitude < 10 ? "0\(magnitude)" : "\(magnitude)"
            return "\(sign)\(mantissa)e\(expSign)\(expDigits)"
        }
        if decimalExponent < 0 {
            return "\(sign)0.\(String(repeating: "0", count: -decimalExponent - 1))\(digits)"
        }
        let integerDigits = decimalExponent + 1
        if digits.count <= integerDigits {
            return "\(sign)\(digits)\(String(repeating: "0", count: integerDigits - digits.count)).0"
        }
        return "\(sign)\(digits.prefix(integerDigits)).\(digits.dropFirst(integerDigits))"
    }
}
