import Foundation
import T5

var options = TrainingOptions()
options.optimizer = .adafactor(.fixed(learningRate: 1e-3))
options.length = .epochs(3)
let tuned = try await Finetuning.run(
    model: URL(fileURLWithPath: "t5-small"),
    train: [.file("sum.jsonl", prefix: "summarize: "),
            .examples("greetings", [TextExample(input: "translate English to German: Hello", target: "Hallo")])],
    options: options, freeze: ["embeddings"], output: URL(fileURLWithPath: "tuned")
) { event in
    if case .step(let report) = event { print(report.step, report.loss, report.learningRate) }
}
print(try tuned.generate("summarize: ...")[0].text)
