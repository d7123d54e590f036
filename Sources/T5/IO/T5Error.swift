import Foundation

/// Every failure the library reports, each with a payload that says what went wrong and where.
///
/// `description` is the single line the `t5` command prints on stderr, so library users
/// and CLI users see the same words.
public enum T5Error: Error, Equatable, Sendable, CustomStringConvertible {
    /// A model directory, or a file inside it, does not exist.
    case missingFile(path: String)
    /// `--model NAME` is neither a directory nor a model in the Hugging Face cache.
    case modelNotFound(name: String, searched: [String])
    /// A file exists but could not be read or mapped.
    case unreadableFile(path: String, reason: String)
    /// `config.json` (or another JSON file) is malformed or has an invalid value.
    case invalidConfig(path: String, reason: String)
    /// A safetensors file whose header or layout is broken.
    case corruptCheckpoint(path: String, reason: String)
    /// Tensors the configuration needs are absent from the checkpoint (all of them, at once).
    case missingTensors(path: String, keys: [String])
    /// A tensor whose shape differs from what the configuration implies.
    case wrongShape(key: String, expected: [Int], actual: [Int])
    /// A tensor stored in a dtype this runtime cannot compute with.
    case unsupportedDType(key: String, dtype: String)
    /// The SentencePiece model could not be loaded or used.
    case tokenizer(path: String, reason: String)
    /// An input is longer than the caller allows.
    case inputTooLong(tokens: Int, limit: Int)
    /// An option value outside its valid range (0 beams, top-p outside (0, 1], ...).
    case invalidOption(name: String, reason: String)
    /// A data file for training or batch input has a bad line.
    case invalidData(path: String, line: Int, reason: String)
    /// Writing a file failed; nothing half-written was left behind.
    case writeFailed(path: String, reason: String)
    /// A NaN or infinity where only finite numbers are valid: a weight (`what` names the tensor and file), or
    /// a value computed from finite weights that overflowed (the logits of a step).
    case nonFinite(what: String)
    /// A request or model needs more memory than the machine has (or than an index can count).
    case tooLarge(what: String, bytes: Int?, available: Int)
    /// Training reached a step whose loss or gradient norm is not finite (or whose update made a weight
    /// non-finite), more times than it was allowed to skip; nothing of that step was saved.
    case diverged(step: Int, reason: String)
    /// The task running a generation was cancelled (a stream's consumer stopped, a client disconnected).
    case cancelled
    /// Generation, scoring or training asked of an encoder-only checkpoint.
    case noDecoder(architecture: String)

    public var description: String {
        switch self {
        case let .missingFile(path):
            return "\(path): no such file or directory"
        case let .modelNotFound(name, searched):
            return "\(name) is not a directory, nor in the Hugging Face cache (looked for \(searched.joined(separator: ", "))); this runtime never downloads: on a machine with access, `hf download \(name) --local-dir DIR` (older huggingface_hub: `huggingface-cli download`) or transformers' `save_pretrained(DIR)` writes a directory to copy here and pass as --model DIR"
        case let .unreadableFile(path, reason):
            return "\(path): cannot read: \(reason)"
        case let .invalidConfig(path, reason):
            return "\(path): invalid configuration: \(reason)"
        case let .corruptCheckpoint(path, reason):
            return "\(path): corrupt checkpoint: \(reason)"
        case let .missingTensors(path, keys):
            let shown = keys.prefix(8).joined(separator: ", ")
            let more = keys.count > 8 ? " and \(keys.count - 8) more" : ""
            return "\(path): missing tensor\(keys.count == 1 ? "" : "s") \(shown)\(more)"
        case let .wrongShape(key, expected, actual):
            return "tensor \(key): expected shape \(expected), found \(actual)"
        case let .unsupportedDType(key, dtype):
            return "tensor \(key): unsupported dtype \(dtype) (expected F32, F16 or BF16)"
        case let .tokenizer(path, reason):
            return "\(path): tokenizer: \(reason)"
        case let .inputTooLong(tokens, limit):
            return "input has \(tokens) tokens, more than maxInputTokens \(limit)"
        case let .invalidOption(name, reason):
            return "invalid value for \(name): \(reason)"
        case let .invalidData(path, line, reason):
            return "\(path):\(line): \(reason)"
        case let .writeFailed(path, reason):
            return "\(path): cannot write: \(reason)"
        case let .nonFinite(what):
            return "non-finite value (NaN or infinity) in \(what)"
        case let .tooLarge(what, bytes, available):
            let need = bytes.map { "needs \(MemoryBudget.format($0))" } ?? "needs more memory than can be counted"
            return "\(what) \(need), more than the \(MemoryBudget.format(available)) of memory available"
        case let .diverged(step, reason):
            return "training diverged at step \(step): \(reason); the last checkpoint saved before it is kept (a lower learning rate, or TrainingOptions.maxNonFiniteSteps N to skip such steps)"
        case let .noDecoder(architecture):
            return "this checkpoint is encoder-only (\(architecture)): it has no decoder to generate, score or fine-tune with; `t5 embed` computes its embeddings"
        case .cancelled:
            return "cancelled"
        }
    }
}
