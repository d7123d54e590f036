import ArgumentParser
import Foundation
import T5

struct Embed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encoder embeddings of each input: pooled vectors or every token's hidden state.",
        discussion: """
            Works on full T5 checkpoints and encoder-only ones (T5EncoderModel, MT5EncoderModel, \
            UMT5EncoderModel). The states are the encoder's last hidden state (after its final norm), as \
            transformers' T5EncoderModel returns them. A sentence-transformers directory (modules.json: \
            Sentence-T5, GTR) gives SentenceTransformer.encode's vectors: its own truncation, pooling, Dense \
            layers and normalization. Inputs come from TEXT arguments, --input-file or stdin (one per line).
            """)

    enum PoolingChoice: String, ExpressibleByArgument, CaseIterable {
        case mean, first, none
    }

    @OptionGroup var modelOptions: ModelOptions
    @Option(parsing: .unconditional, help: "mean: over the input's tokens, </s> included (masked, as sentence-transformers); first: the first token's state; none: every token's state. Default: mean.")
    var pooling: PoolingChoice?
    @Flag(help: "Scale each pooled vector to unit L2 length.") var normalize = false
    @Option(parsing: .unconditional, help: "Refuse inputs longer than N tokens (</s> included).") var maxInputTokens: Int?
    @Option(parsing: .unconditional, help: "Cut inputs longer than N tokens to their first N-1 and </s> (transformers' truncation=True, max_length=N).")
    var truncate: Int?
    @Option(parsing: .unconditional, help: "Pad every input with pad ids to N tokens (cutting longer ones); needs --no-attention-mask.") var padTo: Int?
    @Flag(help: "With --pad-to: attend to the padding too, as Flux and Stable Diffusion 3 feed their T5 encoder.")
    var noAttentionMask = false
    @Flag(help: "Print one JSON object per input: {\"text\", \"embedding\"} (or {\"text\", \"hidden\"} with --pooling none).")
    var json = false
    @Option(parsing: .unconditional, help: "Write the results to this new .safetensors file instead of stdout: \"embeddings\" (inputs, dim), or \"hidden.N\" (tokens, dim) per input with --pooling none.")
    var output: String?
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var inputFile: InputFileOptions
    @Argument(help: textArgumentHelp) var text: [String] = []

    struct Vector: Encodable {
        let text: String
        let embedding: [Float]
    }

    struct Hidden: Encodable {
        let text: String
        let hidden: [[Float]]
    }

    func validate() throws {
        if inputFile.inputFile != nil && !text.isEmpty { throw ValidationError("give either --input-file or TEXT, not both") }
        if padTo != nil && !noAttentionMask {
            throw ValidationError("--pad-to attends to the padding: pass --no-attention-mask with it to say so (masked inputs need no padding)")
        }
        if noAttentionMask && padTo == nil { throw ValidationError("--no-attention-mask needs --pad-to N") }
        if padTo != nil && truncate != nil { throw ValidationError("--pad-to already cuts inputs to N tokens; drop --truncate") }
        if normalize && pooling == PoolingChoice.none { throw ValidationError("--normalize applies to pooled vectors, not to --pooling none") }
        if json && output != nil { throw ValidationError("give either --json or --output, not both") }
        try checkWhileParsing { () throws(T5Error) in try embeddingOptions.validate() }
    }

    private var embeddingOptions: EmbeddingOptions {
        EmbeddingOptions(maxInputTokens: maxInputTokens, truncateTo: truncate, padTo: padTo)
    }

    func run() async throws {
        runtime.apply()
        let outputURL = try output.map { (path: String) throws(T5Error) -> URL in
            let url = URL(fileURLWithPath: path)
            guard !FileManager.default.fileExists(atPath: url.path) else {
                throw T5Error.invalidOption(name: "--output", reason: "\(path) already exists; choose a new file")
            }
            return url
        }
        let directory = try modelOptions.directory()
        let options = embeddingOptions

        if SentenceEncoder.isSentenceTransformer(directory) {
            // Its modules decide the pipeline; a flag that would change it is refused rather than ignored.
            if pooling != nil || normalize || truncate != nil || padTo != nil {
                throw T5Error.invalidOption(
                    name: "--model", reason: "\(directory.path) is a sentence-transformers model: its modules.json sets truncation, pooling and normalization (drop --pooling, --normalize, --truncate, --pad-to)")
            }
            let encoder = try SentenceEncoder(directory: directory, weights: modelOptions.weights)
            let (records, inputs) = try readAll()
            if let limit = maxInputTokens {
                for input in inputs where encoder.model.tokenizer.encode(input).count > limit {
                    throw T5Error.inputTooLong(tokens: encoder.model.tokenizer.encode(input).count, limit: limit)
                }
            }
            try emit(vectors: encoder.encode(inputs), records: records, to: outputURL)
            return
        }

        let model = try modelOptions.load()
        let (records, inputs) = try readAll()
        switch pooling ?? .mean {
        case .none:
            let states = try model.hiddenStates(inputs, options: options)
            if let outputURL {
                var tensors = [String: Tensor]()
                for (i, s) in states.enumerated() { tensors["hidden.\(i)"] = Tensor(shape: [s.tokens, s.dim], values: s.values) }
                try SafeTensorsWriter.write(tensors, to: outputURL, metadata: ["format": "pt", "t5.pooling": "none", "t5.inputs": String(inputs.count)])
                return
            }
            for (record, s) in zip(records, states) {
                let rows = (0..<s.tokens).map { Array(s.row($0)) }
                if json {
                    try printJSON(Hidden(text: record.text, hidden: rows), extra: record.extra)
                } else {
                    for row in rows { print(row.map { "\($0)" }.joined(separator: " ")) }
                    print()
                }
            }
        case .mean, .first:
            let chosen: Pooling = pooling == .first ? .first : .mean
            try emit(vectors: model.embed(inputs, pooling: chosen, normalize: normalize, options: options), records: records, to: outputURL)
        }
    }

    /// Every input, read once the model has loaded: one batch, one --output file.
    private func readAll() throws -> (records: [InputRecord], inputs: [String]) {
        var records: [InputRecord] = []
        try forEachInputBatch(texts: text, file: inputFile) { records += $0 }
        return (records, records.map(\.text))
    }

    private func emit(vectors: [[Float]], records: [InputRecord], to url: URL?) throws {
        let inputs = records.map(\.text)
        if let url {
            let dim = vectors.first?.count ?? 0
            try SafeTensorsWriter.write(["embeddings": Tensor(shape: [vectors.count, dim], values: vectors.flatMap { $0 })], to: url,
                                        metadata: ["format": "pt", "t5.inputs": String(inputs.count)])
            return
        }
        for (record, vector) in zip(records, vectors) {
            if json {
                try printJSON(Vector(text: record.text, embedding: vector), extra: record.extra)
            } else {
                print(vector.map { "\($0)" }.joined(separator: " "))
            }
        }
    }
}
