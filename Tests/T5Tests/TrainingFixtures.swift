import Foundation
import Testing
@testable import T5

/// The PyTorch training references written by tools/make_training_fixtures.py (Tests/Fixtures/training/README.md).
enum TrainingFixtures {
    static let variants = ["t5-relu-tied", "t5v11-gated-gelu", "umt5-gated-gelu"]

    static func directory(_ variant: String) -> URL {
        Fixtures.root.appendingPathComponent("training").appendingPathComponent(variant)
    }

    struct Reference: Decodable {
        struct Batch: Decodable {
            let input_ids: [[Int]]
            let target_ids: [[Int]]
        }
        struct LabelSmoothing: Decodable {
            let epsilon: Float
            let loss: Float
            let grads: String
        }
        struct Optimizer: Decodable {
            let steps: Int
            let losses_before_each_step: [Float]
            let file: String
        }
        let model: String
        let tied: Bool
        let batch: Batch
        let tokens: Int
        let loss: Float
        let correct: Int
        let grads: String
        let label_smoothing: LabelSmoothing?
        let optimizers: [String: Optimizer]
    }

    static func reference(_ variant: String) throws -> Reference {
        let data = try Data(contentsOf: directory(variant).appendingPathComponent("reference.json"))
        return try JSONDecoder().decode(Reference.self, from: data)
    }

    static func batch(_ variant: String) throws -> TrainingBatch {
        let r = try reference(variant)
        return TrainingBatch(inputIDs: r.batch.input_ids, targetIDs: r.batch.target_ids)
    }

    /// The initial checkpoint. The directory has no spiece.model (the batch is raw ids): the tokenizer is the
    /// inference fixtures' one, which training never reads.
    static func model(_ variant: String) throws -> T5Model {
        let dir = directory(variant)
        let config = try T5Config.load(from: dir.appendingPathComponent("config.json"))
        let archive = try SafeTensorsArchive(directory: dir)
        let tokenizer = try T5Tokenizer(modelFile: Fixtures.root.appendingPathComponent("spm/spiece.model"))
        return try T5Model(config: config, archive: archive, tokenizer: tokenizer, path: dir.path)
    }

    /// Every tensor of one of the variant's safetensors files, as flat arrays.
    static func tensors(_ variant: String, _ file: String) throws -> [String: [Float]] {
        let archive = try SafeTensorsArchive(file: directory(variant).appendingPathComponent(file))
        var out = [String: [Float]]()
        for key in archive.keys { out[key] = try archive.tensor(key).array }
        return out
    }
}

/// Each parameter's update since `initial` (ours: the store's values now) against PyTorch's (`expected` minus
/// `initial`), expected within `tolerance` relative L2; returns the worst, for the suite's log line.
func worstUpdateDistance(
    _ store: ParameterStore, initial: [String: [Float]], expected: [String: [Float]], tolerance: Double, label: String
) throws -> (key: String, distance: Double) {
    var worst = (key: "", distance: 0.0)
    for spec in store.specs {
        let start = try #require(initial[spec.key])
        let ours = zip(try #require(store.values[spec.key]).array, start).map { $0 - $1 }
        let theirs = zip(try #require(expected[spec.key]), start).map { $0 - $1 }
        let d = relativeL2(ours, theirs)
        #expect(d <= tolerance, "\(label) \(spec.key): the update differs from PyTorch's by relative L2 \(d)")
        if d > worst.distance { worst = (spec.key, d) }
    }
    return worst
}

/// ‖a − b‖ / ‖b‖ (in Double); ‖a‖ when b is 0.
func relativeL2(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "\(a.count) vs \(b.count) elements")
    var diff = 0.0, norm = 0.0
    for (x, y) in zip(a, b) {
        diff += Double(x - y) * Double(x - y)
        norm += Double(y) * Double(y)
    }
    return norm == 0 ? diff.squareRoot() : (diff / norm).squareRoot()
}

func relativeL2(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "\(a.count) vs \(b.count) elements")
    var diff = 0.0, norm = 0.0
    for (x, y) in zip(a, b) {
        diff += (x - y) * (x - y)
        norm += y * y
    }
    return norm == 0 ? diff.squareRoot() : (diff / norm).squareRoot()
}
