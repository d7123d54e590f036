import Foundation

/// A sentence-transformers directory (Sentence-T5, GTR): `modules.json` chains a Transformer (a T5 encoder),
/// a Pooling, optional Dense layers and an optional Normalize, and `encode` gives what
/// `SentenceTransformer.encode` gives. Both the layout sentence-transformers 2-5 writes
/// (`sentence_transformers.models.Pooling`, `pooling_mode_mean_tokens`, `max_seq_length` in
/// sentence_bert_config.json) and the one 6 writes (`pooling_mode`, `model_max_length` in
/// tokenizer_config.json) are read; any module or setting outside this chain is refused by name.
public struct SentenceEncoder: Sendable {
    /// A `Dense` module: y = activation(W x + b).
    public struct Dense: Sendable {
        public enum Activation: String, Sendable {
            case identity = "torch.nn.modules.linear.Identity"
            case tanh = "torch.nn.modules.activation.Tanh"
        }
        let weight: Tensor  // (out, in)
        let bias: Tensor?   // (out)
        public let activation: Activation
        public var inFeatures: Int { weight.shape[1] }
        public var outFeatures: Int { weight.shape[0] }

        func apply(_ x: [Float]) -> [Float] {
            (0..<outFeatures).map { o in
                var y: Float = 0
                let row = weight.pointer + o * inFeatures
                for i in 0..<inFeatures { y += row[i] * x[i] }
                if let bias { y += bias.pointer[o] }
                return activation == .tanh ? Foundation.tanh(y) : y
            }
        }
    }

    public let model: T5Model
    public let pooling: Pooling
    public let dense: [Dense]
    public let normalize: Bool
    /// Inputs are truncated to this many tokens (`</s>` included), as sentence-transformers' tokenizer does.
    public let maxSequenceLength: Int?

    /// True when `directory` holds a `modules.json`.
    public static func isSentenceTransformer(_ directory: URL) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent("modules.json").path)
    }

    public init(directory: URL, weights precision: WeightPrecision? = nil) throws(T5Error) {
        let modulesPath = directory.appendingPathComponent("modules.json")
        guard case .array(let modules) = try ConfigReader.json(modulesPath) else {
            throw .invalidConfig(path: modulesPath.path, reason: "expected a list of modules")
        }
        var model: T5Model?
        var pooling: Pooling?
        var dense = [Dense]()
        var normalize = false
        var maxLength: Int?
        for (index, value) in modules.enumerated() {
            guard case .object(let module) = value, case .string(let type)? = module["type"] else {
                throw .invalidConfig(path: modulesPath.path, reason: "module \(index) has no \"type\"")
            }
            var relative = ""
            if let path = module["path"] {
                guard case .string(let p) = path else { throw .invalidConfig(path: modulesPath.path, reason: "module \(index): \"path\" is not a string") }
                relative = p
            }
            guard !relative.split(separator: "/").contains("..") else {
                throw .invalidConfig(path: modulesPath.path, reason: "module \(index): path \(relative) leaves the directory")
            }
            let dir = relative.isEmpty ? directory : directory.appendingPathComponent(relative)
            let kind = type.split(separator: ".").last.map(String.init) ?? type
            let order = "module \(index) (\(kind))"
            switch kind {
            case "Transformer" where model == nil && index == 0:
                model = try T5Model(directory: dir, weights: precision)
                maxLength = try Self.maxSequenceLength(dir)
            case "Pooling" where model != nil && pooling == nil:
                pooling = try Self.pooling(dir.appendingPathComponent("config.json"))
            case "Dense" where pooling != nil && !normalize:
                dense.append(try Self.dense(dir, expectedIn: dense.last?.outFeatures ?? model!.config.dModel))
            case "Normalize" where pooling != nil && !normalize:
                normalize = true
            case "Transformer", "Pooling", "Dense", "Normalize":
                throw .invalidConfig(path: modulesPath.path, reason: "\(order) is out of place: this runtime computes Transformer → Pooling → Dense* → Normalize?")
            default:
                throw .invalidConfig(path: modulesPath.path, reason: "\(order): the module type \(type) is not supported (Transformer, Pooling, Dense and Normalize are)")
            }
        }
        guard let model, let pooling else {
            throw .invalidConfig(path: modulesPath.path, reason: "a Transformer followed by a Pooling module is needed")
        }
        self.model = model
        self.pooling = pooling
        self.dense = dense
        self.normalize = normalize
        maxSequenceLength = maxLength
    }

    /// `SentenceTransformer.encode(texts)`: truncated inputs, the encoder, pooling, the Dense layers and
    /// the normalization, in that order.
    public func encode(_ texts: [String]) throws(T5Error) -> [[Float]] {
        let states = try model.hiddenStates(texts, options: EmbeddingOptions(truncateTo: maxSequenceLength))
        return try states.enumerated().map { (i, s) throws(T5Error) in
            var x = T5Model.pool(s, pooling)
            for layer in dense { x = layer.apply(x) }
            if normalize { T5Model.normalize(&x) }
            guard x.allSatisfy(\.isFinite) else { throw .nonFinite(what: "the embedding of input \(i + 1)") }
            return x
        }
    }

    /// The length of an embedding.
    public var dimension: Int { dense.last?.outFeatures ?? model.config.dModel }

    // MARK: - Files

    /// sentence_bert_config.json's `max_seq_length` (sentence-transformers 2-5), else tokenizer_config.json's
    /// `model_max_length` (6), else none.
    static func maxSequenceLength(_ dir: URL) throws(T5Error) -> Int? {
        let bert = dir.appendingPathComponent("sentence_bert_config.json")
        if FileManager.default.fileExists(atPath: bert.path), let n = try ConfigReader.load(bert).optionalInt("max_seq_length") {
            guard n >= 2 else { throw .invalidConfig(path: bert.path, reason: "max_seq_length \(n) is below 2") }
            return n
        }
        let tokenizer = dir.appendingPathComponent("tokenizer_config.json")
        guard FileManager.default.fileExists(atPath: tokenizer.path) else { return nil }
        let reader = try ConfigReader.load(tokenizer)
        // transformers writes a huge sentinel (1e30) for "no limit"; only a real int is a limit.
        guard case .integer(let n)? = reader.object["model_max_length"], n < 1 << 31 else { return nil }
        guard n >= 2 else { throw .invalidConfig(path: tokenizer.path, reason: "model_max_length \(n) is below 2") }
        return n
    }

    static func pooling(_ url: URL) throws(T5Error) -> Pooling {
        let reader = try ConfigReader.load(url)
        let names: [String: Pooling] = ["mean": .mean, "cls": .first]
        if let mode = reader.object["pooling_mode"] {
            guard case .string(let name) = mode else {
                throw .invalidConfig(path: url.path, reason: "pooling_mode: expected a string, found \(mode.typeName)")
            }
            guard let pooling = names[name] else {
                throw .invalidConfig(path: url.path, reason: "pooling_mode '\(name)' is not supported (mean and cls are)")
            }
            return pooling
        }
        // The older layout: one boolean per mode, exactly one of them true.
        let flags = ["pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean", "pooling_mode_max_tokens": "max",
                     "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens": "weightedmean",
                     "pooling_mode_lasttoken": "lasttoken"]
        var chosen = [String]()
        for (key, name) in flags.sorted(by: { $0.key < $1.key }) where try reader.optionalBool(key, nullMeans: false) == true {
            chosen.append(name)
        }
        guard chosen.count == 1, let pooling = names[chosen[0]] else {
            throw .invalidConfig(path: url.path, reason: "pooling modes \(chosen.isEmpty ? "none" : chosen.joined(separator: " + ")) are not supported (exactly one of mean and cls is)")
        }
        return pooling
    }

    static func dense(_ dir: URL, expectedIn: Int) throws(T5Error) -> Dense {
        let configURL = dir.appendingPathComponent("config.json")
        let reader = try ConfigReader.load(configURL)
        let inFeatures = try reader.int("in_features", default: -1), outFeatures = try reader.int("out_features", default: -1)
        let hasBias = try reader.optionalBool("bias", nullMeans: nil) ?? true
        let activationName = try reader.string("activation_function", default: "torch.nn.modules.activation.Tanh")
        guard let activation = Dense.Activation(rawValue: activationName) else {
            throw .invalidConfig(path: configURL.path, reason: "activation_function \(activationName) is not supported (Identity and Tanh are)")
        }
        guard inFeatures == expectedIn, outFeatures >= 1 else {
            throw .invalidConfig(path: configURL.path, reason: "in_features \(inFeatures), out_features \(outFeatures): the layer before gives \(expectedIn) values")
        }
        let weightsURL = dir.appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            throw .missingFile(path: weightsURL.path + " (a pytorch_model.bin Dense layer converts with tools/convert.py)")
        }
        let archive = try SafeTensorsArchive(file: weightsURL)
        let keys = ["linear.weight"] + (hasBias ? ["linear.bias"] : [])
        let missing = keys.filter { archive.info($0) == nil }
        if !missing.isEmpty { throw .missingTensors(path: weightsURL.path, keys: missing) }
        if let extra = archive.keys.first(where: { !keys.contains($0) }) {
            throw .corruptCheckpoint(path: weightsURL.path, reason: "unexpected tensor \(extra) for a Dense layer with bias \(hasBias)")
        }
        let weight = try archive.tensor("linear.weight")
        if weight.shape != [outFeatures, inFeatures] { throw .wrongShape(key: "linear.weight", expected: [outFeatures, inFeatures], actual: weight.shape) }
        let bias = hasBias ? try archive.tensor("linear.bias") : nil
        if let bias, bias.shape != [outFeatures] { throw .wrongShape(key: "linear.bias", expected: [outFeatures], actual: bias.shape) }
        for (key, t) in [("linear.weight", weight)] + (bias.map { [("linear.bias", $0)] } ?? []) {
            guard UnsafeBufferPointer(start: t.pointer, count: t.count).allSatisfy(\.isFinite) else {
                throw .nonFinite(what: "tensor \(key) of \(weightsURL.path)")
            }
        }
        return Dense(weight: weight, bias: bias, activation: activation)
    }
}
