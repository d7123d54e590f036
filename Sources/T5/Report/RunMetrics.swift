import Foundation

/// A run's `metrics.jsonl` (see `MetricsLog`), as the report draws it: the training steps and the evaluations.
/// Every training command writes this layout, so one reader serves finetune, pretrain and distill runs.
package struct RunMetrics: Sendable {
    package struct Step: Sendable {
        package var step: Int
        package var loss: Double?
        package var learningRate: Double?
        package var tokensPerSecond: Double?
        /// Input + target tokens trained on up to and including this step.
        package var tokens: Int
    }

    package struct Evaluation: Sendable {
        package var step: Int
        package var loss: Double?
        package var tokenAccuracy: Double?
        package var exactMatch: Double?
        /// Per task (several --valid): name → (loss, token accuracy, exact match).
        package var tasks: [(name: String, loss: Double?, tokenAccuracy: Double?, exactMatch: Double?)]
    }

    package var steps: [Step] = []
    /// One per step evaluated (a step evaluated twice, by a resumed session, keeps its last record).
    package var evaluations: [Evaluation] = []

    /// Reads `url`; a partial last line (a run killed mid-write) and lines that are not objects are skipped.
    package init(contentsOf url: URL) throws(T5Error) {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw .missingFile(path: url.path) }
        var tokens = 0
        var byStep = [Int: Evaluation]()
        for line in data.split(separator: UInt8(ascii: "\n")) {
            guard case .object(let o)? = try? JSONParser.parse(Data(line)), case .string(let type)? = o["type"],
                  case .integer(let step)? = o["step"] else { continue }
            switch type {
            case "train":
                tokens += (o["input_tokens"]?.double).map(Int.init) ?? 0
                tokens += (o["target_tokens"]?.double).map(Int.init) ?? 0
                steps.append(Step(step: step, loss: o["loss"]?.double, learningRate: o["lr"]?.double,
                                  tokensPerSecond: o["tokens_per_s"]?.double, tokens: tokens))
            case "eval":
                var tasks = [(name: String, loss: Double?, tokenAccuracy: Double?, exactMatch: Double?)]()
                if case .object(let t)? = o["tasks"] {
                    for m in t.members {
                        guard case .object(let f) = m.value else { continue }
                        tasks.append((m.key, f["loss"]?.double, f["token_accuracy"]?.double, f["exact_match"]?.double))
                    }
                }
                byStep[step] = Evaluation(step: step, loss: o["loss"]?.double, tokenAccuracy: o["token_accuracy"]?.double,
                                          exactMatch: o["exact_match"]?.double, tasks: tasks)
            default:
                continue
            }
        }
        evaluations = byStep.values.sorted { $0.step < $1.step }
    }

    /// Tokens trained on by `step`.
    package func tokens(at step: Int) -> Int {
        steps.last { $0.step <= step }?.tokens ?? 0
    }
}
