import ArgumentParser
import Foundation
import T5

struct Info: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Describe a model: variant, shapes, parameters, dtypes and files.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var output: QuietOption

    func run() async throws {
        output.apply()
        let directory = try modelOptions.directory()
        let model = try modelOptions.load(forInference: false)
        let c = model.config
        let archive = try SafeTensorsArchive(directory: directory)
        let variant = c.isGatedActivation
            ? "T5 v1.1 style (gated-\(c.activation.rawValue) feed-forward)"
            : "original T5 style (\(c.activation.rawValue) feed-forward)"
        print("model:        \(directory.path)")
        if let card = ModelCard(directory: directory) { print("about:        \(card.summary)") }
        print("class:        \(model.architecture) (model_type \(c.variant.rawValue))")
        print("variant:      \(variant)")
        if model.hasDecoder {
            print("lm head:      \(model.hasSeparateLMHead ? "separate lm_head.weight" : "tied to shared embedding")"
                  + (c.rescalesDecoderOutput ? ", decoder output scaled by d_model^-0.5" : ", no rescale"))
        }
        print("d_model \(c.dModel), d_kv \(c.dKV), heads \(c.numHeads), d_ff \(c.dFF)")
        print("layers:       encoder \(c.numLayers), " + (model.hasDecoder ? "decoder \(c.numDecoderLayers)" : "no decoder (encoder-only: t5 embed)"))
        print("vocab:        \(c.vocabSize) (tokenizer \(model.tokenizer.size): \(model.tokenizer.summary))")
        print("position:     \(c.relativeAttentionNumBuckets) buckets, max distance \(c.relativeAttentionMaxDistance)"
              + (c.variant.hasPerBlockRelativeBias ? ", a bias table per block" : ""))
        print("parameters:   \(model.parameterCount.formatted())")
        if model.hasDecoder {
            print("weights:      \(model.weightPrecision.rawValue) projections in memory; a decode step reads \(formatBytes(model.decodeWeightBytes))")
            let g = GenerationOptions(for: model)
            let fromFile = model.generationConfig?.setKeys ?? []
            print("generation:   max_new_tokens \(g.maxNewTokens), num_beams \(g.numBeams), do_sample \(g.sample), "
                  + "decoder_start \(model.decoderStartTokenID), eos \(model.eosTokenIDs.map(String.init).joined(separator: ",")), pad \(model.padTokenID)")
            print("              " + (fromFile.isEmpty
                ? "(transformers' defaults: no generation_config.json values)"
                : "(generation_config.json sets \(fromFile.joined(separator: ", ")); the rest are transformers' defaults)"))
            if let unsupported = model.generationConfig?.unsupported, !unsupported.isEmpty {
                print("              not implemented, ignored: \(unsupported.joined(separator: ", "))")
            }
        }
        switch archive.metadata["t5.weights"] {
        case "int8"?: print("saved:        int8 projections by t5 convert (model.int8.safetensors: this runtime only; transformers refuses the directory)")
        case "bf16"?: print("saved:        bf16 projections by t5 convert (model.safetensors: transformers loads it too)")
        case "f32"?: print("saved:        fp32 by t5 convert")
        default: break
        }
        var dtypes = [String: Int]()
        for key in archive.keys { if let info = archive.info(key) { dtypes[info.dtype, default: 0] += 1 } }
        print("dtypes:       " + dtypes.sorted { $0.key < $1.key }.map { "\($0.key) × \($0.value)" }.joined(separator: ", "))
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for file in files.sorted() {
            // stat(2) follows symlinks: Hugging Face's hub cache links each file to a blob.
            var info = stat()
            let path = directory.appendingPathComponent(file).path
            let size = stat(path, &info) == 0 ? formatBytes(Int(info.st_size)) : "(\(String(cString: strerror(errno))))"
            var link = ""
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) { link = " -> \(target)" }
            print("file:         \(file)\(link)  \(size)")
        }
    }
}

func formatBytes(_ n: Int) -> String {
    if n >= 1 << 30 { return String(format: "%.2f GiB", Double(n) / Double(1 << 30)) }
    if n >= 1 << 20 { return String(format: "%.1f MiB", Double(n) / Double(1 << 20)) }
    if n >= 1 << 10 { return String(format: "%.1f KiB", Double(n) / Double(1 << 10)) }
    return "\(n) B"
}
