import ArgumentParser
import Foundation
import T5

/// `--model DIR`, shared by every subcommand; without it the bundled default model is used.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, parsing: .unconditional, help: "Model directory (config.json, model.safetensors, spiece.model), or a Hugging Face name (org/name) found in the local hub cache; never downloaded. Default: the bundled model.")
    var model: String?

    @Option(name: .long, parsing: .unconditional, help: "Precision of the projection weights in memory: f32 (exact), bf16 or int8 (per-channel scales). Default: as `t5 convert` saved them, else f32.")
    var weights: WeightPrecision?

    /// The directory to load: --model, else $T5_MODEL, else the bundled `models/default` found next to
    /// the executable's build folder or the current directory.
    func directory() throws(T5Error) -> URL {
        if let model { return try ModelLocation.resolve(model) }
        if let env = ProcessInfo.processInfo.environment["T5_MODEL"], !env.isEmpty { return try ModelLocation.resolve(env) }
        // The running binary's real path (found through PATH or a symlink such as .build/release/t5).
        let executable = (Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])).resolvingSymlinksInPath()
        var candidates = [URL]()
        var dir = executable.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent("models/default"))
            dir = dir.deletingLastPathComponent()
        }
        candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("models/default"))
        for candidate in candidates where FileManager.default.fileExists(atPath: candidate.appendingPathComponent("config.json").path) {
            return candidate
        }
        throw .missingFile(path: "models/default (no --model given and no bundled model found; pass --model DIR)")
    }

    /// `forInference: false` for commands that train or convert the model (no packed weights, see
    /// `T5Model.init(directory:weights:packWeights:)`).
    func load(forInference: Bool = true) throws(T5Error) -> T5Model {
        try T5Model(directory: directory(), weights: weights, packWeights: forInference)
    }
}

extension ModelOptions {
    /// `--model`'s directory (or the bundled model), for commands that hand it on to others.
    static func resolve(_ model: String?) throws(T5Error) -> URL {
        var options = ModelOptions()
        options.model = model
        return try options.directory()
    }
}

/// `--quiet`, on every command: one definition, so that the flag and its help are the same everywhere.
struct QuietOption: ParsableArguments {
    @Flag(help: "Print nothing on stderr but errors: no progress, notes or warnings.") var quiet = false

    /// Sets the quiet mode for this process.
    func apply() {
        quietMode = quiet
    }
}

/// The most threads `--threads` accepts.
let maximumThreads = 256

/// `--threads` and `--quiet`, the same on every command that computes (generate, score, embed, convert,
/// bench, finetune, pretrain, distill, tokenizer train). `--threads` sets the process default
/// (`T5Runtime.setThreads`): the runtime's worker pool, which runs every matrix product and parallel loop
/// (OpenBLAS itself always runs on one thread), and sentencepiece's trainer threads in `tokenizer train`.
struct RuntimeOptions: ParsableArguments {
    // The default shown is the runtime's own, read before any --threads is applied.
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Threads for the matrix products and other parallel loops (default: \(T5Runtime.threads), one per core this process may run on; at most \(maximumThreads)).",
        valueName: "N"))
    var threads: Int?
    @OptionGroup var output: QuietOption

    var quiet: Bool { output.quiet }

    func validate() throws {
        if let t = threads, t < 1 { throw invalidValue("--threads", "must be at least 1, got \(t)") }
        // Each thread is a pool worker with its own scratch; thousands only oversubscribe the cores.
        if let t = threads, t > maximumThreads {
            throw invalidValue("--threads", "must be at most \(maximumThreads), got \(t)")
        }
    }

    /// Sets the thread count and the quiet mode for this process.
    func apply() {
        if let threads { T5Runtime.setThreads(threads) }
        output.apply()
    }
}

/// Set by `--quiet`: `warn` and `note` print nothing.
nonisolated(unsafe) var quietMode = false

/// A warning line on stderr, unless --quiet.
func warn(_ line: String) {
    if !quietMode { printError("t5: warning: " + line) }
}

/// Decoding flags shared by `generate` (and later by evaluation commands). A flag left out takes the model's
/// generation_config.json value, else transformers' default (transformers' precedence).
struct DecodingOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Beam width (1 = greedy search). Default: generation_config.json's num_beams, else 1.") var beams: Int?
    @Option(parsing: .unconditional, help: "Sequences to return per input (at most --beams; with --sample, independent samples).") var numReturnSequences: Int?
    @Option(parsing: .unconditional, help: "Beam scores are sum(log p) / length^X (default 1).") var lengthPenalty: Float?
    @Flag(help: "Stop beam search as soon as --beams hypotheses are finished.") var earlyStopping = false
    @Flag(help: "Canonical beam search: only stop when no beam can improve (transformers' early_stopping=\"never\").") var neverStopEarly = false
    @Option(parsing: .unconditional, help: "Maximum number of tokens to generate. Default: generation_config.json's max_new_tokens (or max_length - 1), else 20 as in transformers.") var maxNewTokens: Int?
    @Option(parsing: .unconditional, help: "Minimum number of tokens before eos is allowed (default 0).") var minNewTokens: Int?
    @Flag(inversion: .prefixedNo, help: "Sample instead of searching (default: generation_config.json's do_sample, else off).") var sample: Bool?
    @Option(parsing: .unconditional, help: "Sampling temperature (default 1).") var temperature: Float?
    @Option(parsing: .unconditional, help: "Sample among the K most likely tokens (0 = off; default 50).") var topK: Int?
    @Option(parsing: .unconditional, help: "Sample from the smallest set of tokens whose probability reaches P, in (0, 1] (default 1).") var topP: Float?
    @Option(parsing: .unconditional, help: "Random seed for --sample.") var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Penalize tokens already generated (>1 discourages repeats; default 1).") var repetitionPenalty: Float?
    @Option(parsing: .unconditional, help: "Never repeat an n-gram of this size (0 = off, the default).") var noRepeatNgramSize: Int?
    @Option(parsing: .unconditional, help: "Refuse inputs longer than N tokens (default: no limit; a warning past 512).") var maxInputTokens: Int?
    @Option(parsing: .unconditional, help: "Cut inputs longer than N tokens to their first N-1 and </s>, as the tokenizer's truncation does.") var truncate: Int?

    /// The flags given, over `base` (the model's defaults, or transformers' before a model is loaded).
    func generationOptions(over base: GenerationOptions = GenerationOptions()) -> GenerationOptions {
        var o = base
        if let beams { o.numBeams = beams }
        if let numReturnSequences { o.numReturnSequences = numReturnSequences }
        if let lengthPenalty { o.lengthPenalty = lengthPenalty }
        if neverStopEarly { o.earlyStopping = .never } else if earlyStopping { o.earlyStopping = .always }
        if let maxNewTokens { o.maxNewTokens = maxNewTokens }
        if let minNewTokens { o.minNewTokens = minNewTokens }
        if let sample { o.sample = sample }
        if let temperature { o.temperature = temperature }
        if let topK { o.topK = topK }
        if let topP { o.topP = topP }
        o.seed = seed
        if let repetitionPenalty { o.repetitionPenalty = repetitionPenalty }
        if let noRepeatNgramSize { o.noRepeatNgramSize = noRepeatNgramSize }
        o.maxInputTokens = maxInputTokens
        o.truncateInputsTo = truncate
        return o
    }

    /// The flags over `model`'s generation_config.json, checked again as a whole (a flag may combine badly
    /// with a value from the file); unimplemented settings in the file are named in one warning line.
    func generationOptions(for model: T5Model) throws(T5Error) -> GenerationOptions {
        if let unsupported = model.generationConfig?.unsupported, !unsupported.isEmpty {
            warn("generation_config.json sets \(unsupported.joined(separator: ", ")), which this runtime does not implement; ignored")
        }
        let options = generationOptions(over: GenerationOptions(for: model))
        try options.validate()
        return options
    }

    func validate() throws {
        if earlyStopping && neverStopEarly {
            throw ValidationError("--early-stopping and --never-stop-early contradict each other")
        }
        try checkWhileParsing { () throws(T5Error) in try generationOptions().validate() }
    }
}

/// A flag value refused while parsing (exit 64, as argument-parser's own refusals), in the words of the
/// library's `.invalidOption` errors: "invalid value for --runs: must be at least 1, got 0".
func invalidValue(_ flag: String, _ reason: String) -> ValidationError {
    ValidationError(T5Error.invalidOption(name: flag, reason: reason).description)
}

/// Runs a library check of flag values while parsing, so that a bad value exits 64 like any other usage
/// error, with the library's field names replaced by the flags (`FlagNames`).
func checkWhileParsing(_ check: () throws(T5Error) -> Void) throws {
    do {
        try check()
    } catch {
        throw ValidationError(FlagNames.cli(error.description))
    }
}

/// Prints one JSON value per line, keys sorted, for scripts. A value JSON cannot hold (a NaN or infinity)
/// is an error naming where it is, never a line that silently goes missing.
func printJSON<T: Encodable>(_ value: T) throws(T5Error) {
    print(String(decoding: try encodeJSON(value), as: UTF8.self))
}

/// `value` as compact JSON with sorted keys; a NaN or infinity is an error naming where it is, never a
/// line that silently goes missing.
func encodeJSON<T: Encodable>(_ value: T) throws(T5Error) -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    do {
        return try encoder.encode(value)
    } catch let EncodingError.invalidValue(bad, context) {
        let path = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        throw .nonFinite(what: "the JSON output at \(path.isEmpty ? "the top level" : path) (\(bad))")
    } catch {
        throw .writeFailed(path: "stdout", reason: "cannot encode JSON: \(error)")
    }
}

extension WeightPrecision: ExpressibleByArgument {}

/// The span-corruption settings of `t5 pretrain` and of `t5 finetune --pretrain-text`, with T5's defaults.
struct SpanCorruptionFlags: ParsableArguments {
    @Option(parsing: .unconditional, help: "Fraction of each chunk's tokens replaced by noise spans, in (0, 1).") var noiseDensity = 0.15
    @Option(parsing: .unconditional, help: "Mean length of a noise span, at least 1.") var meanSpanLength = 3.0
    @Flag(help: "Each non-blank line of a .txt corpus is a document (default: documents are separated by blank lines).")
    var oneDocumentPerLine = false

    func validate() throws {
        if !(noiseDensity > 0 && noiseDensity < 1) { throw invalidValue("--noise-density", "must be in (0, 1), got \(noiseDensity)") }
        if !(meanSpanLength >= 1 && meanSpanLength.isFinite) { throw invalidValue("--mean-span-length", "must be at least 1, got \(meanSpanLength)") }
    }

    /// The corruption for inputs of `inputLength` tokens with `tokenizer`'s sentinels.
    func corruption(inputLength: Int, tokenizer: any Tokenizer) throws(T5Error) -> SpanCorruption {
        try SpanCorruption(inputLength: inputLength, noiseDensity: noiseDensity, meanSpanLength: meanSpanLength,
                           sentinelCount: tokenizer.sentinelCount)
    }
}
