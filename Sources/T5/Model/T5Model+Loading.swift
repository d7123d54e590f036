import Foundation

extension T5Model {
    /// Loads a model directory in the Hugging Face layout: `config.json`, `model.safetensors` (or shards
    /// with `model.safetensors.index.json`) and `spiece.model`.
    ///
    /// F32 weights are used in place from the memory-mapped file; F16 and BF16 ones are widened once.
    /// The variant comes from `config.json` and is then checked against the tensors present: every
    /// missing tensor is reported at once, then the first wrongly shaped one.
    public init(directory: URL) throws(T5Error) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) else {
            throw .missingFile(path: directory.path)
        }
        guard isDirectory.boolValue else {
            throw .unreadableFile(path: directory.path, reason: "not a directory (a model is a directory with config.json, model.safetensors and spiece.model)")
        }
        let config = try T5Config.load(from: directory.appendingPathComponent("config.json"))
        let archive = try SafeTensorsArchive(directory: directory)
        let tokenizer = try T5Tokenizer(modelFile: directory.appendingPathComponent("spiece.model"))
        if tokenizer.size > config.vocabSize {
            throw .invalidConfig(
                path: directory.appendingPathComponent("config.json").path,
                reason: "vocab_size \(config.vocabSize) is smaller than the tokenizer's \(tokenizer.size) tokens")
        }
        try self.init(config: config, archive: archive, tokenizer: tokenizer, path: directory.path)
    }

    /// Builds the model from an opened checkpoint archive.
    init(config: T5Config, archive: SafeTensorsArchive, tokenizer: T5Tokenizer, path: String) throws(T5Error) {
        // transformers 5 ties the LM head to `shared` unless the file carries its own `lm_head.weight`.
        let separateLMHead = archive.info(T5Parameters.lmHead) != nil
        let specs = T5Parameters.specs(for: config, separateLMHead: separateLMHead)
        let missing = specs.filter { archive.info($0.key) == nil }.map(\.key)
        if !missing.isEmpty { throw .missingTensors(path: path, keys: missing) }
        var tensors = [String: Tensor]()
        for spec in specs {
            guard let info = archive.info(spec.key) else { continue }
            if info.shape != spec.shape { throw .wrongShape(key: spec.key, expected: spec.shape, actual: info.shape) }
            tensors[spec.key] = try archive.tensor(spec.key)
        }
        let weights = T5Weights(config: config, separateLMHead: separateLMHead) { key in
            // Every key the weights ask for is in `specs`, checked above.
            tensors[key] ?? Tensor(zeros: [0])
        }
        self.init(config: config, weights: weights, tokenizer: tokenizer, hasSeparateLMHead: separateLMHead)
    }
}
