import Foundation

/// A training task whose examples are span-corrupted chunks of a corpus (`SpanCorruption` over
/// `CorpusChunks`), streamed: only its summary is held, the chunks are read as batches need them.
public struct SpanCorruptionCorpus: Sendable {
    public let files: [String]
    public let onePerLine: Bool
    public let corruption: SpanCorruption
    /// The tokenizer that cuts the documents into ids.
    public let tokenizer: any Tokenizer
    /// Documents, tokens and chunks per pass, from one checking pass over the files.
    public let summary: CorpusSummary

    /// Reads the files once (`CorpusChunks.scan`): every problem a file has (missing, not UTF-8, bad JSON,
    /// corrupt gzip, no text, too little) is found here, before anything is written.
    public init(files: [String], onePerLine: Bool = false, corruption: SpanCorruption, tokenizer: any Tokenizer) throws(T5Error) {
        guard !files.isEmpty else { throw .invalidOption(name: "SpanCorruptionCorpus.files", reason: "no corpus files given") }
        self.files = files
        self.onePerLine = onePerLine
        self.corruption = corruption
        self.tokenizer = tokenizer
        summary = try CorpusChunks.scan(files: files, onePerLine: onePerLine, length: corruption.rawLength, tokenizer: tokenizer)
    }

    /// A name for reports.
    public var name: String { files.count == 1 ? files[0] : "\(files[0]) +\(files.count - 1)" }

    /// What a resumed run must repeat: the corruption settings and the corpus itself.
    public var signature: String {
        "span corruption: input \(corruption.inputLength), noise \(corruption.noiseDensity), mean span \(corruption.meanSpanLength), "
            + "\(onePerLine ? "one document per line" : "blank-line documents"); \(files.joined(separator: ", ")): \(summary.documents) documents, "
            + "\(summary.tokens) tokens, fnv1a \(String(summary.fingerprint, radix: 16))"
    }

    /// A stream of this corpus's raw chunks.
    public func chunks() -> CorpusChunks {
        CorpusChunks(files: files, onePerLine: onePerLine, length: corruption.rawLength, tokenizer: tokenizer)
    }

    /// Every chunk of one pass, corrupted, for evaluation: a fixed set (the masks of the validation stream
    /// of `seed`), held in memory, so keep validation corpora small.
    public func validationExamples(seed: UInt64) throws(T5Error) -> [TokenizedExample] {
        let stream = chunks()
        var examples = [TokenizedExample]()
        for index in 0..<summary.chunks {
            examples.append(corruption.corrupt(try stream.next(), index: index, seed: seed, validation: true, tokenizer: tokenizer))
        }
        return examples
    }
}
