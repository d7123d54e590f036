import Foundation
@testable import T5

/// Access to the committed fixtures made by tools/make_fixtures.py (transformers + PyTorch answers).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static let modelNames = ["t5-relu-tied", "t5v11-gated-gelu", "t5-gated-silu-bf16", "t5-gelu-f16-legacy", "umt5-tiny", "byt5-tiny"]

    static func modelDirectory(_ name: String) -> URL {
        root.appendingPathComponent("models").appendingPathComponent(name)
    }

    static func json(_ relative: String) throws -> Any {
        let data = try Data(contentsOf: root.appendingPathComponent(relative))
        return try JSONSerialization.jsonObject(with: data)
    }

    static func reference<T: Decodable>(_ type: T.Type, _ relative: String) throws -> T {
        let data = try Data(contentsOf: root.appendingPathComponent(relative))
        return try JSONDecoder().decode(T.self, from: data)
    }

    /// Models are loaded once per test process; loading is cheap but the suites share them.
    nonisolated(unsafe) private static var cache = [String: T5Model]()
    private static let lock = NSLock()

    static func model(_ name: String) throws -> T5Model {
        lock.lock()
        defer { lock.unlock() }
        if let m = cache[name] { return m }
        let m = try T5Model(directory: modelDirectory(name))
        cache[name] = m
        return m
    }
}

/// transformers' answers for one model (see Tests/Fixtures/README.md).
struct ModelReference: Decodable {
    struct ScoreCase: Decodable {
        let input: String
        let target: String
        let input_ids: [Int]
        let target_ids: [Int]
        let logprobs: [Float]
        let total: Float
    }
    struct Rows: Decodable {
        let input_ids: [Int]
        let target_ids: [Int]
        let rows: [[Float]]
    }
    struct Hidden: Decodable {
        let input_ids: [Int]
        let values: [[Float]]
    }
    struct GreedyCase: Decodable {
        let input: String
        let input_ids: [Int]
        let max_new_tokens: Int
        let min_new_tokens: Int
        let repetition_penalty: Float
        let no_repeat_ngram_size: Int
        let ids: [Int]
        let score: Float
        let min_margin: Float
    }
    struct BeamOutput: Decodable {
        let ids: [Int]
        let score: Float
    }
    struct BeamCase: Decodable {
        let input: String
        let input_ids: [Int]
        let num_beams: Int
        let length_penalty: Float
        let early_stopping: EarlyStoppingValue
        let num_return_sequences: Int
        let max_new_tokens: Int
        let min_new_tokens: Int
        let outputs: [BeamOutput]
    }
    /// `true`, `false` or `"never"`.
    struct EarlyStoppingValue: Decodable {
        let value: EarlyStopping
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { value = b ? .always : .heuristic } else { _ = try c.decode(String.self); value = .never }
        }
    }
    struct BatchCase: Decodable {
        let inputs: [String]
        let input_ids: [[Int]]
        let max_new_tokens: Int
        let ids: [[Int]]
    }
    let model: String
    let score: [ScoreCase]
    let logprob_rows: Rows
    let encoder_hidden: Hidden
    let greedy: [GreedyCase]
    let beam: [BeamCase]
    let batch: [BatchCase]
}

extension ModelReference.GreedyCase {
    /// The generation options transformers ran this case with.
    var options: GenerationOptions {
        var o = GenerationOptions()
        o.maxNewTokens = max_new_tokens
        o.minNewTokens = min_new_tokens
        o.repetitionPenalty = repetition_penalty
        o.noRepeatNgramSize = no_repeat_ngram_size
        return o
    }
}

extension ModelReference.BeamCase {
    /// The generation options transformers ran this case with.
    var options: GenerationOptions {
        var o = GenerationOptions()
        o.numBeams = num_beams
        o.lengthPenalty = length_penalty
        o.earlyStopping = early_stopping.value
        o.numReturnSequences = num_return_sequences
        o.maxNewTokens = max_new_tokens
        o.minNewTokens = min_new_tokens
        return o
    }
}

extension ModelReference.BatchCase {
    /// Each input without the padding transformers' batch carried (every input ends at its eos).
    var unpaddedInputs: [[Int]] {
        input_ids.map { ids in Array(ids.prefix(through: ids.lastIndex(of: 1) ?? ids.count - 1)) }
    }
}

/// Compares with |a − b| ≤ tol · max(1, |b|) and describes the first mismatch.
func firstMismatch(_ actual: [Float], _ expected: [Float], tolerance: Float) -> String? {
    if actual.count != expected.count { return "length \(actual.count) != expected \(expected.count)" }
    var worst: Float = 0
    var first: String?
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        let diff = abs(a - e)
        worst = max(worst, diff)
        if first == nil && !(diff <= tolerance * max(1, abs(e))) { first = "index \(i): \(a) vs expected \(e)" }
    }
    return first.map { "\($0); max |diff| \(worst)" }
}
