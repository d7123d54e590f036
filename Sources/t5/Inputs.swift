import ArgumentParser
import Foundation
import T5

/// Where the inputs of `generate`, `score`, `tokenize` and `embed` come from. One rule for all of them:
/// each TEXT argument is one input; without TEXT, inputs are the lines of --input-file or of stdin, read as
/// they arrive and answered batch by batch (so `t5 generate` works as a filter in a pipeline and typed at),
/// either plain text (every line an input, blank ones too, so output N answers line N) or JSON Lines objects
/// with `"input"` (and, for `score`, `"target"`), whose other fields are copied into `--json` output.
struct InputFileOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Read inputs from FILE (- for stdin), one per line; a name ending in .jsonl means JSON Lines.") var inputFile: String?
    @Flag(help: "Inputs from --input-file or stdin are JSON Lines: {\"input\": ...} (score: and \"target\"); other fields are copied to --json output.") var jsonl = false

    var isJSONLines: Bool { jsonl || (inputFile?.hasSuffix(".jsonl") ?? false) }
}

/// The help of every command's TEXT argument.
let textArgumentHelp: ArgumentHelp = "Input texts, each argument one input. Without any, inputs are read from --input-file or stdin, one per line, each batch answered as it arrives."

/// One input and where it came from.
struct InputRecord {
    var text: String
    var target: String?
    /// A JSON Lines input's other fields, in their order.
    var extra: [JSONMember] = []
}

/// Calls `body` with the inputs in batches of at most `batch`: the TEXT arguments, else what the input file
/// or stdin holds, each batch as soon as its lines have arrived. `needsTarget`: JSON Lines objects must have
/// a `"target"` string (score).
func forEachInputBatch(
    texts: [String], file: InputFileOptions, needsTarget: Bool = false, batch: Int = 32,
    _ body: ([InputRecord]) throws -> Void
) throws {
    if !texts.isEmpty {
        for start in stride(from: 0, to: texts.count, by: batch) {
            try body(texts[start..<min(start + batch, texts.count)].map { InputRecord(text: $0) })
        }
        return
    }
    let reader = try LineReader(path: file.inputFile)
    if needsTarget && !file.isJSONLines {
        throw T5Error.invalidOption(name: "--input-file", reason: "score reads pairs: JSON Lines objects with \"input\" and \"target\" (a .jsonl file, or --jsonl)")
    }
    while let lines = try reader.nextLines(limit: batch) {
        var records: [InputRecord] = []
        for line in lines {
            guard file.isJSONLines else {
                records.append(InputRecord(text: line.text))
                continue
            }
            records.append(try jsonRecord(line.text, path: reader.name, line: line.number, needsTarget: needsTarget))
        }
        try body(records)
        fflush(nil)  // every output stream: a pipeline reader sees each batch as soon as it is answered
    }
}

private func jsonRecord(_ text: String, path: String, line: Int, needsTarget: Bool) throws(T5Error) -> InputRecord {
    guard case .object(let object) = try JSONValue.parse(text, path: path, line: line) else {
        throw .invalidData(path: path, line: line, reason: "expected a JSON object with \"input\"")
    }
    func field(_ name: String) throws(T5Error) -> String? {
        switch object[name] {
        case nil: return nil
        case .string(let s)?: return s
        case let other?: throw .invalidData(path: path, line: line, reason: "\"\(name)\" must be a string, found \(other.typeName)")
        }
    }
    guard let input = try field("input") else { throw .invalidData(path: path, line: line, reason: "missing field \"input\"") }
    let target = try field("target")
    if needsTarget && target == nil { throw .invalidData(path: path, line: line, reason: "missing field \"target\"") }
    let extra = object.members.filter { $0.key != "input" && !(needsTarget && $0.key == "target") }
    return InputRecord(text: input, target: target, extra: extra)
}

/// Prints `value` as one JSON line with `extra` members (an input's own fields, such as "id") added; the
/// value's fields win over an extra field of the same name.
func printJSON<T: Encodable>(_ value: T, extra: [JSONMember]) throws(T5Error) {
    guard !extra.isEmpty else { return try printJSON(value) }
    let encoded = try encodeJSON(value)
    guard case .object(var object) = try JSONValue.parse(String(decoding: encoded, as: UTF8.self), path: "output", line: 1) else {
        return try printJSON(value)
    }
    for member in extra where object[member.key] == nil { object[member.key] = member.value }
    print(JSONValue.object(object).text)
}

/// The first command-line argument that is not valid UTF-8, as "argument N" (Swift's `CommandLine.arguments`
/// would replace the bad bytes with U+FFFD and the model would silently see other text).
func firstInvalidArgument() -> String? {
    for i in 1..<Int(CommandLine.argc) {
        guard let raw = CommandLine.unsafeArgv[i] else { continue }
        if String(validatingCString: raw) == nil { return "argument \(i) is not valid UTF-8 text" }
    }
    return nil
}
