import Foundation
import T5

/// The inputs of `generate` and `tokenize` when no TEXT argument is given: the lines of `--input-file`
/// (a file, FIFO or device) or of stdin, read by the library's `TextFile` so that CRLF, a byte order mark
/// and bytes that are not UTF-8 are handled as for training data. Every line is an input, blank ones too,
/// so output line N answers input line N.
func readInputLines(file: String?) throws(T5Error) -> [String] {
    let name = file ?? TextFile.standardInputName
    let bytes: [UInt8]
    if let file {
        bytes = try TextFile.bytes(path: file)
    } else {
        bytes = try TextFile.standardInput()
    }
    return try TextFile.lines(bytes, name: name).map(\.text)
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
