import ArgumentParser
import Foundation
import T5

struct Convert: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model with its projection weights stored in another precision.",
        discussion: """
            `t5 convert --model DIR --weights int8 --out DIR2` stores the projections as int8 with per-row \
            scales (a quarter of the bytes; a layout only this runtime reads), `--weights bf16` as BF16 (which \
            transformers also loads). Embeddings, norms and position biases stay fp32. spiece.model and \
            generation_config.json are copied.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Output directory.") var out: String

    func run() async throws {
        let source = try modelOptions.directory()
        let destination = URL(fileURLWithPath: out)
        if destination.standardizedFileURL == source.standardizedFileURL {
            throw T5Error.invalidOption(name: "--out", reason: "must differ from --model")
        }
        let model = try modelOptions.load(forInference: false)
        try model.write(to: destination)
        for name in ["spiece.model", "generation_config.json"] {
            let from = source.appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: from.path) else { continue }
            try AtomicFile.write(data, to: destination.appendingPathComponent(name))
        }
        print("wrote \(destination.path) (\(model.weightPrecision.rawValue) projections)")
    }
}
