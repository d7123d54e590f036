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
    @Option(help: "Output directory: new, or empty (written whole, then renamed into place).") var out: String

    func run() async throws {
        let source = try modelOptions.directory()
        let destination = URL(fileURLWithPath: out)
        if destination.standardizedFileURL == source.standardizedFileURL {
            throw T5Error.invalidOption(name: "--out", reason: "must differ from --model")
        }
        try OutputDirectory.requireNew(destination, option: "--out")
        let model = try modelOptions.load(forInference: false)
        try OutputDirectory.writeAtomically(destination, option: "--out") { (directory: URL) throws(T5Error) in
            try model.write(to: directory)
            for name in ["spiece.model", "generation_config.json"] {
                let from = source.appendingPathComponent(name)
                guard FileManager.default.fileExists(atPath: from.path) else { continue }
                try AtomicFile.write(Data(try TextFile.bytes(path: from.path)), to: directory.appendingPathComponent(name))
            }
        }
        print("wrote \(destination.path) (\(model.weightPrecision.rawValue) projections)")
    }
}
