import Foundation

/// One (input, target) text pair of a data file.
public struct TextExample: Sendable, Equatable {
    public var input: String
    public var target: String
    /// The 1-based line of the file it came from.
    public var line: Int

    public init(input: String, target: String, line: Int = 0) {
        self.input = input
        self.target = target
        self.line = line
    }
}

/// The two file formats training data may come in.
public enum DataFormat: String, Sendable {
    /// One JSON object per line with string fields `"input"` and `"target"` (other fields are ignored).
    case jsonLines = "jsonl"
    /// `input<TAB>target` per line, exactly two columns, no quoting.
    case tsv

    /// The format a path's extension names (`.jsonl`, `.json`, `.ndjson`, `.tsv`), or nil to sniff the content.
    public static func byExtension(_ path: String) -> DataFormat? {
        switch (path as NSString).pathExtension.lowercased() {
        case "jsonl", "json", "ndjson": return .jsonLines
        case "tsv": return .tsv
        default: return nil
        }
    }
}

/// A data file read and checked: its examples and the empty lines it skipped.
public struct DataFile: Sendable {
    public let path: String
    public let format: DataFormat
    public let examples: [TextExample]
    /// Lines that were empty (or only spaces and tabs), skipped.
    public let emptyLines: Int

    /// Reads `path`. The format is the extension's, else JSON Lines when the first non-empty line starts
    /// with `{`, else TSV. Throws `.missingFile`, `.unreadableFile`, or `.invalidData` with the 1-based
    /// line for malformed JSON, a missing or non-string field, a wrong column count, bytes that are not
    /// UTF-8, or a file without a single example.
    public init(path: String, format: DataFormat? = nil) throws(T5Error) {
        try self.init(bytes: TextFile.bytes(path: path), path: path, format: format)
    }

    /// Parses file contents; `path` names the file in errors.
    public init(data: Data, path: String, format: DataFormat? = nil) throws(T5Error) {
        try self.init(bytes: [UInt8](data), path: path, format: format)
    }

    init(bytes: [UInt8], path: String, format: DataFormat?) throws(T5Error) {
        let lines = try TextFile.lines(bytes, name: path)
        let resolved = format ?? DataFormat.byExtension(path)
            ?? (lines.first(where: { !TextFile.isBlank($0.text) }).map { $0.text.drop(while: { $0 == " " || $0 == "\t" }).first == "{" } == true ? .jsonLines : .tsv)

        var examples = [TextExample]()
        var empty = 0
        for (number, text) in lines {
            // A line of only spaces or tabs is a blank line, in either format (a lone tab is not an example
            // with two empty fields).
            if TextFile.isBlank(text) {
                empty += 1
                continue
            }
            switch resolved {
            case .jsonLines: examples.append(try Self.parseJSONLine(text, path: path, line: number))
            case .tsv: examples.append(try Self.parseTSVLine(text, path: path, line: number))
            }
        }
        guard !examples.isEmpty else {
            let reason = lines.isEmpty ? "the file is empty" : "no examples, only \(empty) empty line\(empty == 1 ? "" : "s")"
            throw .invalidData(path: path, line: max(1, lines.count), reason: reason)
        }
        self.path = path
        self.format = resolved
        self.examples = examples
        self.emptyLines = empty
    }

    private static func parseJSONLine(_ text: String, path: String, line: Int) throws(T5Error) -> TextExample {
        let value = try JSONValue.parse(text, path: path, line: line)
        guard case .object(let object) = value else {
            throw .invalidData(path: path, line: line, reason: "expected a JSON object with \"input\" and \"target\", found \(value.typeName)")
        }
        func field(_ name: String) throws(T5Error) -> String {
            guard let found = object[name] else {
                throw .invalidData(path: path, line: line, reason: "missing field \"\(name)\"")
            }
            guard case .string(let s) = found else {
                throw .invalidData(path: path, line: line, reason: "field \"\(name)\" must be a string, found \(found.typeName)")
            }
            return s
        }
        return TextExample(input: try field("input"), target: try field("target"), line: line)
    }

    private static func parseTSVLine(_ text: String, path: String, line: Int) throws(T5Error) -> TextExample {
        let columns = text.split(separator: "\t", omittingEmptySubsequences: false)
        guard columns.count == 2 else {
            throw .invalidData(path: path, line: line, reason: "expected 2 tab-separated columns (input<TAB>target), found \(columns.count)")
        }
        return TextExample(input: String(columns[0]), target: String(columns[1]), line: line)
    }
}

/// `--train` / `--valid` argument: a data file, optionally with a task prefix (`"summarize: =FILE"`).
public struct TaskSource: Sendable, Equatable {
    /// Prepended verbatim to every input (include the trailing space: `"summarize: "`).
    public var prefix: String
    public var path: String

    public init(prefix: String = "", path: String) {
        self.prefix = prefix
        self.path = path
    }

    /// Parses `FILE` or `PREFIX=FILE`. An argument naming an existing file is a file, even if it has
    /// an `=`; otherwise it is split at its first `=`.
    public static func parse(_ argument: String) -> TaskSource {
        if FileManager.default.fileExists(atPath: argument) { return TaskSource(path: argument) }
        guard let equals = argument.firstIndex(of: "=") else { return TaskSource(path: argument) }
        return TaskSource(prefix: String(argument[..<equals]), path: String(argument[argument.index(after: equals)...]))
    }

    /// A display name: the prefix without its trailing punctuation and spaces, or the file name.
    public var name: String {
        let trimmed = prefix.trimmingCharacters(in: CharacterSet.whitespaces.union(CharacterSet(charactersIn: ":")))
        return trimmed.isEmpty ? (path as NSString).lastPathComponent : trimmed
    }
}

/// One tokenized example: ids ending with `</s>`, unpadded.
public struct TokenizedExample: Sendable, Equatable {
    public var inputIDs: [Int]
    public var targetIDs: [Int]

    public init(inputIDs: [Int], targetIDs: [Int]) {
        self.inputIDs = inputIDs
        self.targetIDs = targetIDs
    }
}

/// What truncation cut from one side (inputs or targets) of a task's examples.
public struct TruncationReport: Sendable, Equatable {
    /// Examples that were longer than the limit.
    public var examples = 0
    /// Tokens removed from them.
    public var tokens = 0
}

/// One task's examples: read from its file, prefixed, tokenized and truncated.
public struct TaskData: Sendable {
    public let source: TaskSource
    public let examples: [TokenizedExample]
    /// For a span-corruption task, its corpus; `examples` is then empty and batches stream the chunks.
    public let corpus: SpanCorruptionCorpus?
    public let emptyLines: Int
    public let truncatedInputs: TruncationReport
    public let truncatedTargets: TruncationReport

    /// Reads and tokenizes `source`. Sequences longer than a limit keep their first `limit − 1` tokens
    /// and `</s>` (transformers' tokenizer truncation with `max_length`, which appends `</s>` after cutting).
    public init(source: TaskSource, tokenizer: any Tokenizer, maxInputTokens: Int?, maxTargetTokens: Int?) throws(T5Error) {
        let file = try DataFile(path: source.path)
        self.init(source: source, texts: file.examples, emptyLines: file.emptyLines, tokenizer: tokenizer,
                  maxInputTokens: maxInputTokens, maxTargetTokens: maxTargetTokens)
    }

    /// A task from examples held in memory, prefixed, tokenized and truncated as a file's are; `name`
    /// stands for the file in reports.
    public init(name: String, prefix: String = "", examples: [TextExample], tokenizer: any Tokenizer,
                maxInputTokens: Int? = nil, maxTargetTokens: Int? = nil) {
        self.init(source: TaskSource(prefix: prefix, path: name), texts: examples, emptyLines: 0, tokenizer: tokenizer,
                  maxInputTokens: maxInputTokens, maxTargetTokens: maxTargetTokens)
    }

    private init(source: TaskSource, texts: [TextExample], emptyLines: Int, tokenizer: any Tokenizer,
                 maxInputTokens: Int?, maxTargetTokens: Int?) {
        var inputCut = TruncationReport(), targetCut = TruncationReport()
        func truncate(_ ids: [Int], _ limit: Int?, _ report: inout TruncationReport) -> [Int] {
            guard let limit, ids.count > limit else { return ids }
            report.examples += 1
            report.tokens += ids.count - limit
            return Array(ids.prefix(max(limit - 1, 0))) + [ids.last ?? tokenizer.eosID]
        }
        examples = texts.map { example in
            TokenizedExample(
                inputIDs: truncate(tokenizer.encode(source.prefix + example.input), maxInputTokens, &inputCut),
                targetIDs: truncate(tokenizer.encode(example.target), maxTargetTokens, &targetCut))
        }
        self.source = source
        self.emptyLines = emptyLines
        corpus = nil
        truncatedInputs = inputCut
        truncatedTargets = targetCut
    }

    /// A task built in code (tests, library users with their own pipeline).
    public init(source: TaskSource, examples: [TokenizedExample]) {
        self.source = source
        self.examples = examples
        emptyLines = 0
        corpus = nil
        truncatedInputs = .init()
        truncatedTargets = .init()
    }

    /// A span-corruption task over `corpus`, streamed.
    public init(corpus: SpanCorruptionCorpus) {
        source = TaskSource(path: corpus.name)
        examples = []
        self.corpus = corpus
        emptyLines = 0
        truncatedInputs = .init()
        truncatedTargets = .init()
    }

    /// Examples of one pass: the corpus's chunks for a span-corruption task.
    public var count: Int { corpus?.summary.chunks ?? examples.count }

    /// Input plus target tokens over all examples.
    public var tokenCount: Int { examples.reduce(0) { $0 + $1.inputIDs.count + $1.targetIDs.count } }
}

/// The tasks of a run (one per `--train`), with the rate each is sampled at.
public struct TrainingData: Sendable {
    public let tasks: [TaskData]
    /// Sampling rates, one per task, summing to 1.
    public let rates: [Double]

    /// `weights` (one per task, non-negative, not all 0) set the sampling rates; nil means
    /// examples-proportional mixing, T5's default (each task in proportion to its size).
    public init(tasks: [TaskData], weights: [Double]? = nil) throws(T5Error) {
        guard !tasks.isEmpty else { throw .invalidOption(name: "TrainingData.tasks", reason: "no training data given") }
        let raw = weights ?? tasks.map { Double($0.count) }
        guard raw.count == tasks.count else {
            throw .invalidOption(name: "TrainingData.weights", reason: "\(raw.count) weight\(raw.count == 1 ? "" : "s") for \(tasks.count) task\(tasks.count == 1 ? "" : "s") (one per task, in order)")
        }
        guard raw.allSatisfy({ $0 >= 0 && $0.isFinite }), raw.contains(where: { $0 > 0 }) else {
            throw .invalidOption(name: "TrainingData.weights", reason: "weights must be non-negative numbers, not all zero")
        }
        let total = raw.reduce(0, +)
        self.tasks = tasks
        rates = raw.map { $0 / total }
    }

    /// Examples over all tasks (what one epoch means).
    public var exampleCount: Int { tasks.reduce(0) { $0 + $1.count } }
}
