import Foundation

/// The JSON Lines metrics log of a run (`OUT/metrics.jsonl`): one object per training step
/// (`"type": "train"`) and per evaluation (`"type": "eval"`), each with its `step`.
///
/// Lines are appended as they happen. A resumed run first drops the lines past the checkpoint it
/// resumes from (they belong to steps that will be redone), and any partial last line a kill left.
public final class MetricsLog {
    public let url: URL
    private let handle: FileHandle

    /// Opens (creating) the log. With `keepingThrough`, lines of later steps are removed first.
    public init(url: URL, keepingThrough step: Int? = nil) throws(T5Error) {
        self.url = url
        let manager = FileManager.default
        if let step, manager.fileExists(atPath: url.path) {
            let kept = Self.lines(of: url).filter { line in
                guard case .object(let o)? = try? JSONParser.parse(Data(line.utf8)), case .integer(let s)? = o["step"] else { return false }
                return s <= step
            }
            try AtomicFile.write(Data(kept.map { $0 + "\n" }.joined().utf8), to: url)
        } else if step == nil {
            try AtomicFile.write(Data(), to: url)
        }
        guard let handle = FileHandle(forWritingAtPath: url.path) else {
            throw .writeFailed(path: url.path, reason: "cannot open the metrics log for appending")
        }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    deinit {
        try? handle.close()
    }

    /// Appends one record.
    public func append(_ record: JSONObject) {
        var bytes = JSONWriter.serialize(.object(record), style: .compact)
        bytes.append(UInt8(ascii: "\n"))
        handle.write(Data(bytes))
    }

    /// A training step's record.
    public func append(_ r: StepReport) {
        if let reason = r.skipped {
            // No NaN reaches the file: a skipped step says why instead of logging null figures.
            append(JSONObject([("type", .string("skipped")), ("step", .integer(r.step)), ("reason", .string(reason))]))
            return
        }
        append(JSONObject([
            ("type", .string("train")), ("step", .integer(r.step)), ("epoch", rounded(r.epoch, 4)),
            ("loss", rounded(r.loss, 6)), ("lr", r.learningRate.isFinite ? .number(r.learningRate) : .null),
            ("grad_norm", rounded(r.gradientNorm, 6)), ("examples", .integer(r.examples)),
            ("input_tokens", .integer(r.inputTokens)), ("target_tokens", .integer(r.targetTokens)),
            ("tokens_per_s", rounded(r.tokensPerSecond, 1)), ("step_s", rounded(r.seconds, 4)),
            ("elapsed_s", rounded(r.elapsed, 3)),
        ]))
    }

    /// An evaluation's record, with per-task figures when there are several tasks.
    public func append(_ r: EvaluationReport) {
        var record = JSONObject([
            ("type", .string("eval")), ("step", .integer(r.step)), ("loss", rounded(r.loss, 6)),
            ("token_accuracy", rounded(r.tokenAccuracy, 6)), ("examples", .integer(r.examples)),
            ("tokens", .integer(r.tokens)),
        ])
        if let em = r.exactMatch { record["exact_match"] = rounded(em, 6) }
        if r.tasks.count > 1 {
            record["tasks"] = .object(JSONObject(r.tasks.map { t in
                var o = JSONObject([("loss", rounded(t.loss, 6)), ("token_accuracy", rounded(t.tokenAccuracy, 6)),
                                    ("examples", .integer(t.examples))])
                if let em = t.exactMatch { o["exact_match"] = rounded(em, 6) }
                return (t.name, .object(o))
            }))
        }
        append(record)
    }

    /// A number rounded to `digits` decimals; a non-finite value (a diverged loss) becomes null,
    /// since JSON has no NaN.
    private func rounded(_ x: Double, _ digits: Int) -> JSONValue {
        guard x.isFinite else { return .null }
        let scale = pow(10, Double(digits))
        return .number((x * scale).rounded() / scale)
    }

    /// The complete lines of a file (a partial last line, from a kill mid-write, is dropped).
    private static func lines(of url: URL) -> [String] {
        guard let data = try? Data(contentsOf: url) else { return [] }
        let text = String(decoding: data, as: UTF8.self)
        var lines = text.components(separatedBy: "\n")
        lines.removeLast()  // after the final newline: empty, or a partial line
        return lines.filter { !$0.isEmpty }
    }
}
