import ArgumentParser
import Foundation
import T5

struct Convert: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model with its projection weights stored in another precision.",
        discussion: """
            `t5 convert --model DIR --weights int8 --out DIR2` stores the projections as int8 with per-row \
            scales in model.int8.safetensors (a quarter of the bytes; a layout only this runtime reads, which \
            transformers refuses for want of model.safetensors), `--weights bf16` as BF16 (which transformers \
            also loads). Embeddings, norms and position biases stay fp32. The tokenizer's files and \
            generation_config.json are copied (a model without one gets the one transformers derives from its \
            config, as save_pretrained writes). The result loads at its saved precision by default.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(parsing: .unconditional, help: "Output directory: new, or empty (written whole, then renamed into place).") var out: String
    @OptionGroup var runtime: RuntimeOptions

    func run() async throws {
        runtime.apply()
        let source = try modelOptions.directory()
        let destination = URL(fileURLWithPath: out)
        if destination.standardizedFileURL == source.standardizedFileURL {
            throw T5Error.invalidOption(name: "--out", reason: "must differ from --model")
        }
        try OutputDirectory.requireNew(destination, option: "--out")
        let model = try modelOptions.load(forInference: false)
        let generation = source.appendingPathComponent("generation_config.json")
        let files = ModelDirectory(
            config: model.config, tokenizer: model.tokenizer,
            generationConfig: FileManager.default.fileExists(atPath: generation.path) ? Data(try TextFile.bytes(path: generation.path)) : nil)
        // Written whole into a hidden sibling, then renamed into place (checked new or empty above).
        try files.write(model, to: destination)
        print("wrote \(destination.path) (\(model.weightPrecision.rawValue) projections)")
    }
}
