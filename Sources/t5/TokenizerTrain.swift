import ArgumentParser
import Foundation
import T5

/// `t5 tokenizer`: tokenizer tools; `train` is the one so far (`t5 tokenize` shows a tokenizer's ids).
struct TokenizerGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Tokenizer tools.",
        subcommands: [TokenizerTrain.self]
    )
}

/// `t5 tokenizer train`: a `spiece.model` trained by libsentencepiece under T5's conventions, written into a
/// new directory with (on request) the `config.json` of a T5 shape over it, ready for
/// `t5 finetune --from-scratch`.
struct TokenizerTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a SentencePiece tokenizer (spiece.model) with T5's conventions."
    )

    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp(
        "Training text: a .txt file (one sentence per line) or .jsonl (a \"text\" field per line), either gzip-compressed (.gz); repeatable.",
        valueName: "FILE"))
    var text: [String] = []
    @Option(parsing: .unconditional, help: ArgumentHelp("Pieces in the table, <pad> </s> <unk> included (the 100 sentinels come on top).", valueName: "N"))
    var vocabSize: Int
    @Option(parsing: .unconditional, help: ArgumentHelp("A new or empty directory for spiece.model (and config.json).", valueName: "DIR"))
    var out: String
    @Option(parsing: .unconditional, help: "Fraction of characters the pieces cover, in [0.98, 1] (rarer ones become <unk>).")
    var characterCoverage: Double = 0.9995
    @Option(parsing: .unconditional, help: "unigram (T5's) or bpe.")
    var modelType: String = "unigram"
    @Option(parsing: .unconditional, help: ArgumentHelp("Train on at most N sentences drawn with --seed (default: all).", valueName: "N"))
    var inputSentenceSize: Int?
    @Option(parsing: .unconditional, help: "The seed of the --input-sentence-size draw.")
    var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Also write the config.json of a T5 of this shape over the tokenizer: tiny, small or base.", valueName: "SHAPE"))
    var configLike: String?
    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        if text.isEmpty { throw ValidationError("give the training text with --text FILE") }
        if vocabSize < 8 { throw invalidValue("--vocab-size", "must be at least 8, got \(vocabSize)") }
        if vocabSize > 1_000_000 { throw invalidValue("--vocab-size", "must be at most 1000000, got \(vocabSize)") }
        if !(characterCoverage >= 0.98 && characterCoverage <= 1) {
            throw invalidValue("--character-coverage", "must be in [0.98, 1], got \(characterCoverage)")
        }
        if TokenizerTraining.ModelType(rawValue: modelType) == nil {
            throw invalidValue("--model-type", "must be unigram or bpe, got \(modelType)")
        }
        if let n = inputSentenceSize, n < 1 { throw invalidValue("--input-sentence-size", "must be at least 1, got \(n)") }
        if let shape = configLike, T5Shape(rawValue: shape) == nil {
            throw invalidValue("--config-like", "must be tiny, small or base, got \(shape)")
        }
    }

    func run() throws {
        runtime.apply()
        let outURL = URL(fileURLWithPath: out)
        try OutputDirectory.requireNew(outURL, option: "--out")
        for path in text where !FileManager.default.isReadableFile(atPath: path) {
            throw T5Error.missingFile(path: path)
        }
        let training = TokenizerTraining(
            vocabSize: vocabSize, modelType: TokenizerTraining.ModelType(rawValue: modelType)!,
            characterCoverage: characterCoverage, inputSentenceSize: inputSentenceSize, seed: seed,
            threads: T5Runtime.threads)
        let started = Date()
        let (model, sentences) = try training.train(sentences: TokenizerTraining.sentences(of: text))
        try OutputDirectory.writeAtomically(outURL, option: "--out") { directory throws(T5Error) in
            try AtomicFile.write(model, to: directory.appendingPathComponent("spiece.model"))
            // The table must load as T5Tokenizer loads it (and give its sentinels) before it is called done.
            let tokenizer = try TokenizerDirectory.load(directory)
            if let shape = configLike.flatMap(T5Shape.init(rawValue:)) {
                let config = shape.config(vocabSize: tokenizer.size)
                try AtomicFile.write(Data(config.text.utf8) + Data("\n".utf8), to: directory.appendingPathComponent("config.json"))
            }
        }
        if !runtime.quiet {
            let seconds = Date().timeIntervalSince(started)
            printError("t5: trained \(vocabSize) pieces on \(sentences) sentences in \(String(format: "%.1f", seconds)) s; wrote \(out)/spiece.model")
        }
    }
}

/// The shapes `--config-like` writes: T5 v1.0's (relu, tied embeddings), with `vocab_size` the tokenizer's
/// pieces plus its 100 sentinels.
enum T5Shape: String {
    case tiny, small, base

    func config(vocabSize: Int) -> JSONValue {
        let (model, ff, layers, heads): (Int, Int, Int, Int) = switch self {
        case .tiny: (256, 1024, 4, 4)
        case .small: (512, 2048, 6, 8)
        case .base: (768, 3072, 12, 12)
        }
        return .object(JSONObject([
            ("architectures", .array([.string("T5ForConditionalGeneration")])),
            ("model_type", .string("t5")),
            ("is_encoder_decoder", .bool(true)),
            ("vocab_size", .integer(vocabSize)),
            ("d_model", .integer(model)),
            ("d_kv", .integer(64)),
            ("num_heads", .integer(heads)),
            ("d_ff", .integer(ff)),
            ("num_layers", .integer(layers)),
            ("num_decoder_layers", .integer(layers)),
            ("feed_forward_proj", .string("relu")),
            ("relative_attention_num_buckets", .integer(32)),
            ("relative_attention_max_distance", .integer(128)),
            ("layer_norm_epsilon", .number(1e-6)),
            ("dropout_rate", .number(0.1)),
            ("tie_word_embeddings", .bool(true)),
            ("decoder_start_token_id", .integer(0)),
            ("pad_token_id", .integer(0)),
            ("eos_token_id", .integer(1)),
        ]))
    }
}
