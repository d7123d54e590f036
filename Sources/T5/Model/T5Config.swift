import Foundation

/// The activation functions a T5 feed-forward layer may name: the keys of transformers'
/// `ACT2FN` (transformers/activations.py, `ACT2CLS`) except `prelu` and `xielu`, which carry
/// learnable parameters that T5 checkpoints do not have.
public enum Activation: String, Sendable, CaseIterable {
    /// max(x, 0). Original T5.
    case relu
    /// relu(x)².
    case relu2
    /// min(max(x, 0), 6).
    case relu6
    /// Exact GELU, x·Φ(x) = 0.5·x·(1 + erf(x/√2)).
    case gelu
    /// Exact GELU (Python implementation, same function).
    case geluPython = "gelu_python"
    /// Exact GELU clipped to [-10, 10].
    case gelu10 = "gelu_10"
    /// Tanh GELU, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). T5 v1.1 / Flan-T5 ("gated-gelu").
    case geluNew = "gelu_new"
    /// Tanh GELU (PyTorch's `approximate="tanh"`, same function as gelu_new).
    case geluPytorchTanh = "gelu_pytorch_tanh"
    /// Tanh GELU (Python implementation, same function as gelu_new).
    case geluPythonTanh = "gelu_python_tanh"
    /// 0.5·x·(1 + tanh(0.7978845608·x·(1 + 0.044715·x²))).
    case geluFast = "gelu_fast"
    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) with the constant computed in fp64.
    case geluAccurate = "gelu_accurate"
    /// x·sigmoid(1.702·x).
    case quickGelu = "quick_gelu"
    /// x·sigmoid(x).
    case silu
    /// x·sigmoid(x) (same function as silu).
    case swish
    /// tanh(x).
    case tanh
    /// 1 / (1 + e^-x).
    case sigmoid
    /// x.
    case linear
    /// x·tanh(softplus(x)).
    case mish
    /// x if x ≥ 0 else 0.01·x.
    case leakyRelu = "leaky_relu"
    /// relu6(x + 3)·x / 6.
    case hardswish
    /// 0.5·(1 + erf((x − 0.707107) / (0.282095·√2))).
    case laplace
    /// √softplus(x).
    case sqrtsoftplus
}

/// The checkpoint family, from config.json's `model_type`: transformers' classes that this runtime computes
/// exactly. Anything else (`longt5`, `switch_transformers`, ...) is refused by name rather than run as T5.
public enum T5Variant: String, Sendable, CaseIterable {
    /// T5, T5 v1.1, Flan-T5 (and ByT5, which is a T5 with a byte tokenizer).
    case t5
    /// mT5: T5 v1.1's architecture (modeling_mt5.py is T5's).
    case mt5
    /// UMT5: every block of both stacks has its own relative attention bias (modeling_umt5.py,
    /// `UMT5LayerSelfAttention` builds `has_relative_attention_bias=True` in every layer).
    case umt5

    /// Whether every block carries its own `relative_attention_bias` (else block 0's serves the stack).
    public var hasPerBlockRelativeBias: Bool { self == .umt5 }

    /// transformers' class of the encoder alone (`T5EncoderModel`, ...), whose checkpoints hold
    /// `shared.weight` and `encoder.*` only.
    public var encoderArchitecture: String {
        switch self {
        case .t5: return "T5EncoderModel"
        case .mt5: return "MT5EncoderModel"
        case .umt5: return "UMT5EncoderModel"
        }
    }

    /// transformers' class of the full encoder-decoder model.
    public var architecture: String {
        switch self {
        case .t5: return "T5ForConditionalGeneration"
        case .mt5: return "MT5ForConditionalGeneration"
        case .umt5: return "UMT5ForConditionalGeneration"
        }
    }
}

/// A T5 model's hyperparameters, read from a Hugging Face `config.json` with the defaults and
/// derivations of transformers 5.24's `T5Config` (models/t5/configuration_t5.py).
///
/// Equality compares the hyperparameters only, not the JSON text they came from.
public struct T5Config: Sendable, Equatable {
    /// `model_type` ("t5" when absent, as the files this runtime was first written for sometimes omit it).
    public let variant: T5Variant
    /// `vocab_size` (32128).
    public let vocabSize: Int
    /// `d_model` (512).
    public let dModel: Int
    /// `d_kv`, the per-head size (64).
    public let dKV: Int
    /// `d_ff` (2048).
    public let dFF: Int
    /// `num_layers`, encoder blocks (6).
    public let numLayers: Int
    /// `num_decoder_layers`; `num_layers` when absent or null.
    public let numDecoderLayers: Int
    /// `num_heads` (8).
    public let numHeads: Int
    /// `relative_attention_num_buckets` (32).
    public let relativeAttentionNumBuckets: Int
    /// `relative_attention_max_distance` (128).
    public let relativeAttentionMaxDistance: Int
    /// `layer_norm_epsilon` (1e-6).
    public let layerNormEpsilon: Float
    /// `dropout_rate` (0.1).
    public let dropoutRate: Float
    /// `feed_forward_proj` as written ("relu", "gated-gelu", ...).
    public let feedForwardProj: String
    /// `tie_word_embeddings` as written; nil when absent or null.
    public let tieWordEmbeddings: Bool?
    /// `scale_decoder_outputs` as written; nil when absent. A JSON null is read as false,
    /// because transformers keeps the None and tests it for truth.
    public let scaleDecoderOutputs: Bool?
    /// `pad_token_id` (0; also when null).
    public let padTokenID: Int
    /// Every id in `eos_token_id`, which may be an int or a list ([1]; also when null).
    public let eosTokenIDs: [Int]
    /// `decoder_start_token_id` (0; also when absent or null — configs saved by transformers 5
    /// omit it, and generation then takes it from generation_config.json).
    public let decoderStartTokenID: Int
    /// Whether the feed-forward layer is gated (`wi_0`, `wi_1`): `is_gated_act` when present,
    /// else whether `feed_forward_proj` starts with "gated-".
    public let isGatedActivation: Bool
    /// The feed-forward activation: `dense_act_fn` when present, else the last "-" part of
    /// `feed_forward_proj`, with "gated-gelu" meaning gelu_new.
    public let activation: Activation

    /// The original config.json object, kept so it can be written back with its other keys.
    let json: JSONObject?

    /// The first end-of-sequence id.
    public var eosTokenID: Int { eosTokenIDs.first ?? 1 }

    /// Whether the decoder output is multiplied by `d_model ** -0.5` before the LM head.
    ///
    /// transformers 5.24 sets `scale_decoder_outputs = kwargs.pop("tie_word_embeddings", None)
    /// is not False` (configuration_t5.py:81), then lets a `scale_decoder_outputs` key in the
    /// JSON overwrite it (configuration_utils.py:500-504), and modeling_t5.py:1047-1048 rescales
    /// iff it is truthy. So: the explicit key if present, else "tie_word_embeddings is not false".
    public var rescalesDecoderOutput: Bool {
        scaleDecoderOutputs ?? (tieWordEmbeddings != false)
    }

    /// A configuration built in code, with transformers' defaults. Not validated; call
    /// `validate(path:)` if the values come from a user.
    public init(
        vocabSize: Int = 32128,
        dModel: Int = 512,
        dKV: Int = 64,
        dFF: Int = 2048,
        numLayers: Int = 6,
        numDecoderLayers: Int? = nil,
        numHeads: Int = 8,
        relativeAttentionNumBuckets: Int = 32,
        relativeAttentionMaxDistance: Int = 128,
        layerNormEpsilon: Float = 1e-6,
        dropoutRate: Float = 0.1,
        activation: Activation = .relu,
        isGatedActivation: Bool = false,
        tieWordEmbeddings: Bool? = nil,
        scaleDecoderOutputs: Bool? = nil,
        padTokenID: Int = 0,
        eosTokenIDs: [Int] = [1],
        decoderStartTokenID: Int = 0,
        variant: T5Variant = .t5
    ) {
        self.variant = variant
        self.vocabSize = vocabSize
        self.dModel = dModel
        self.dKV = dKV
        self.dFF = dFF
        self.numLayers = numLayers
        self.numDecoderLayers = numDecoderLayers ?? numLayers
        self.numHeads = numHeads
        self.relativeAttentionNumBuckets = relativeAttentionNumBuckets
        self.relativeAttentionMaxDistance = relativeAttentionMaxDistance
        self.layerNormEpsilon = layerNormEpsilon
        self.dropoutRate = dropoutRate
        self.activation = activation
        self.isGatedActivation = isGatedActivation
        // The spelling transformers itself uses: T5 v1.1 says "gated-gelu" for gated gelu_new.
        if isGatedActivation {
            feedForwardProj = activation == .geluNew ? "gated-gelu" : "gated-\(activation.rawValue)"
        } else {
            feedForwardProj = activation.rawValue
        }
        self.tieWordEmbeddings = tieWordEmbeddings
        self.scaleDecoderOutputs = scaleDecoderOutputs
        self.padTokenID = padTokenID
        self.eosTokenIDs = eosTokenIDs
        self.decoderStartTokenID = decoderStartTokenID
        json = nil
    }

    /// Reads `config.json` at `url`.
    /// Throws `.missingFile`, `.unreadableFile`, or `.invalidConfig` naming the offending key.
    public static func load(from url: URL) throws(T5Error) -> T5Config {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .missingFile(path: path)
        }
        if isDirectory.boolValue { throw .unreadableFile(path: path, reason: "is a directory") }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .unreadableFile(path: path, reason: error.localizedDescription)
        }
        return try T5Config(json: data, path: path)
    }

    /// Parses config.json bytes; `path` names the file in errors.
    ///
    /// Absent keys take transformers' defaults. Wrong JSON types are errors, with transformers'
    /// strictness for integers (`512.0` and `true` are not ints) and a little more leniency for
    /// floats (`1` is accepted for `layer_norm_epsilon`). Unknown keys are ignored and kept.
    public init(json data: Data, path: String) throws(T5Error) {
        guard String(data: data, encoding: .utf8) != nil else {
            throw .invalidConfig(path: path, reason: "not valid UTF-8")
        }
        let root: JSONValue
        do {
            // transformers reads config.json with Python's json module, which accepts NaN/Infinity.
            root = try JSONParser.parse(data, allowNonFinite: true)
        } catch {
            throw .invalidConfig(path: path, reason: "malformed JSON: \(error.description)")
        }
        guard case .object(let object) = root else {
            throw .invalidConfig(path: path, reason: "the top level is \(root.typeName), not an object")
        }
        let reader = ConfigReader(object: object, path: path)
        let modelType = try reader.string("model_type", default: T5Variant.t5.rawValue)
        guard let variant = T5Variant(rawValue: modelType) else {
            throw .invalidConfig(path: path, reason: "model_type '\(modelType)' is not supported (this runtime computes \(T5Variant.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self.variant = variant

        let feedForwardProj = try reader.string("feed_forward_proj", default: "relu")
        // configuration_t5.py:68-74 (derivation) and :88-94 (validate_architecture).
        let parts = feedForwardProj.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        let gated = parts[0] == "gated"
        if (parts.count > 1 && !gated) || parts.count > 2 {
            throw reader.invalid("feed_forward_proj", "'\(feedForwardProj)' is not of the form 'gated-{ACT_FN}' or '{ACT_FN}'")
        }
        var activationName = parts[parts.count - 1]
        if feedForwardProj == "gated-gelu" { activationName = "gelu_new" }
        // Keys left over after T5Config.__post_init__ are set as attributes afterwards
        // (configuration_utils.py:500-504), so saved `dense_act_fn` / `is_gated_act` win.
        let activationKey: String
        if object["dense_act_fn"] != nil {
            activationName = try reader.string("dense_act_fn", default: activationName)
            activationKey = "dense_act_fn"
        } else {
            activationKey = "feed_forward_proj"
        }
        guard let activation = Activation(rawValue: activationName) else {
            throw .invalidConfig(path: path, reason: "unknown activation '\(activationName)' in \(activationKey)")
        }

        let numLayers = try reader.int("num_layers", default: 6)
        self.vocabSize = try reader.int("vocab_size", default: 32128)
        self.dModel = try reader.int("d_model", default: 512)
        self.dKV = try reader.int("d_kv", default: 64)
        self.dFF = try reader.int("d_ff", default: 2048)
        self.numLayers = numLayers
        self.numDecoderLayers = try reader.optionalInt("num_decoder_layers") ?? numLayers
        self.numHeads = try reader.int("num_heads", default: 8)
        self.relativeAttentionNumBuckets = try reader.int("relative_attention_num_buckets", default: 32)
        self.relativeAttentionMaxDistance = try reader.int("relative_attention_max_distance", default: 128)
        self.layerNormEpsilon = try reader.float("layer_norm_epsilon", default: 1e-6)
        self.dropoutRate = try reader.float("dropout_rate", default: 0.1)
        self.feedForwardProj = feedForwardProj
        self.activation = activation
        self.isGatedActivation = try reader.optionalBool("is_gated_act", nullMeans: nil) ?? gated
        self.tieWordEmbeddings = try reader.optionalBool("tie_word_embeddings", nullMeans: nil)
        self.scaleDecoderOutputs = try reader.optionalBool("scale_decoder_outputs", nullMeans: false)
        self.padTokenID = try reader.optionalInt("pad_token_id") ?? 0
        self.eosTokenIDs = try reader.intOrIntList("eos_token_id") ?? [1]
        self.decoderStartTokenID = try reader.optionalInt("decoder_start_token_id") ?? 0
        self.json = object
        try validate(path: path)
    }

    /// Checks the values are usable: positive sizes and layer counts, a finite non-negative
    /// epsilon, a dropout rate in [0, 1], and non-negative token ids.
    public func validate(path: String) throws(T5Error) {
        let sizes: [(String, Int)] = [
            ("vocab_size", vocabSize), ("d_model", dModel), ("d_kv", dKV), ("d_ff", dFF),
            ("num_layers", numLayers), ("num_decoder_layers", numDecoderLayers), ("num_heads", numHeads),
            ("relative_attention_num_buckets", relativeAttentionNumBuckets),
            ("relative_attention_max_distance", relativeAttentionMaxDistance),
        ]
        for (key, value) in sizes where value <= 0 {
            throw .invalidConfig(path: path, reason: "\(key) must be a positive integer, found \(value)")
        }
        guard layerNormEpsilon.isFinite, layerNormEpsilon >= 0 else {
            throw .invalidConfig(path: path, reason: "layer_norm_epsilon must be finite and non-negative, found \(layerNormEpsilon)")
        }
        guard dropoutRate >= 0, dropoutRate <= 1 else {
            throw .invalidConfig(path: path, reason: "dropout_rate must be in [0, 1], found \(dropoutRate)")
        }
        // Every id indexes the embedding table or a logits row: one at or past vocab_size would read past
        // them (garbage, or a fault for large values).
        let ids: [(String, Int)] = [("pad_token_id", padTokenID), ("decoder_start_token_id", decoderStartTokenID)]
            + eosTokenIDs.map { ("eos_token_id", $0) }
        for (key, value) in ids where value < 0 || value >= vocabSize {
            throw .invalidConfig(path: path, reason: "\(key) \(value) is outside the vocabulary 0..<\(vocabSize)")
        }
        // Every tensor size the parameter table derives must be countable; the shapes are then checked
        // against the checkpoint before anything is allocated from them.
        let products: [(String, [Int])] = [
            ("num_heads × d_kv × d_model", [numHeads, dKV, dModel]),
            ("vocab_size × d_model", [vocabSize, dModel]),
            ("d_ff × d_model", [dFF, dModel]),
            ("relative_attention_num_buckets × num_heads", [relativeAttentionNumBuckets, numHeads]),
        ]
        for (what, factors) in products where MemoryBudget.floats(factors) == nil {
            throw .invalidConfig(path: path, reason: "\(what) overflows (\(factors.map(String.init).joined(separator: " × ")))")
        }
    }

    /// The number of parameters the configuration implies (an untied LM head counted when
    /// `separateLMHead`), or nil when it cannot be counted in an Int. Computed without enumerating the
    /// parameter table, so a config that names 2^31 layers is sized before anything loops over them.
    public func parameterCount(separateLMHead: Bool) -> Int? {
        let inner = MemoryBudget.product([numHeads, dKV])
        let attention = inner.flatMap { MemoryBudget.product([4, $0, dModel]) }
        let feedForward = MemoryBudget.product([isGatedActivation ? 3 : 2, dFF, dModel])
        let encoderBlock = MemoryBudget.sum([attention, feedForward, MemoryBudget.product([2, dModel])])
        let decoderBlock = MemoryBudget.sum([attention, attention, feedForward, MemoryBudget.product([3, dModel])])
        let embedding = MemoryBudget.product([vocabSize, dModel])
        return MemoryBudget.sum([
            embedding, separateLMHead ? embedding : 0,
            encoderBlock.flatMap { MemoryBudget.product([$0, numLayers]) },
            decoderBlock.flatMap { MemoryBudget.product([$0, numDecoderLayers]) },
            MemoryBudget.product([variant.hasPerBlockRelativeBias ? numLayers + numDecoderLayers : 2, relativeAttentionNumBuckets, numHeads]),
            MemoryBudget.product([2, dModel]),
        ])
    }

    /// config.json bytes for this configuration, laid out exactly as transformers'
    /// `save_pretrained` writes them (`json.dumps(indent=2, sort_keys=True)` plus a newline).
    ///
    /// A configuration read from a file starts from that file's JSON object, so every key is
    /// kept — including ones this runtime ignores — and an unchanged config is written back
    /// byte-identical to a transformers-written original. One built in code starts from its
    /// fields under transformers' key names. `updates` then replaces or adds top-level keys
    /// (e.g. `["dropout_rate": .number(0.0)]`); the caller is responsible for keeping the result
    /// a valid configuration.
    public func jsonData(updating updates: [String: JSONValue] = [:]) -> Data {
        var object = json ?? fieldsObject
        for key in updates.keys.sorted(by: utf8Precedes) {
            object[key] = updates[key]
        }
        var bytes = JSONWriter.serialize(.object(object), style: .pythonIndented)
        bytes.append(UInt8(ascii: "\n"))
        return Data(bytes)
    }

    /// The fields under the names transformers' `T5Config.to_dict()` uses.
    private var fieldsObject: JSONObject {
        var object = JSONObject()
        object["model_type"] = .string(variant.rawValue)
        object["architectures"] = .array([.string(variant.architecture)])
        object["is_encoder_decoder"] = .bool(true)
        object["vocab_size"] = .integer(vocabSize)
        object["d_model"] = .integer(dModel)
        object["d_kv"] = .integer(dKV)
        object["d_ff"] = .integer(dFF)
        object["num_layers"] = .integer(numLayers)
        object["num_decoder_layers"] = .integer(numDecoderLayers)
        object["num_heads"] = .integer(numHeads)
        object["relative_attention_num_buckets"] = .integer(relativeAttentionNumBuckets)
        object["relative_attention_max_distance"] = .integer(relativeAttentionMaxDistance)
        object["layer_norm_epsilon"] = .number(Double(layerNormEpsilon.description) ?? Double(layerNormEpsilon))
        object["dropout_rate"] = .number(Double(dropoutRate.description) ?? Double(dropoutRate))
        object["feed_forward_proj"] = .string(feedForwardProj)
        object["dense_act_fn"] = .string(activation.rawValue)
        object["is_gated_act"] = .bool(isGatedActivation)
        // Written only when set, so reading the result back gives an equal configuration; the
        // rescale rule resolves an absent key the same way transformers does.
        if let tieWordEmbeddings { object["tie_word_embeddings"] = .bool(tieWordEmbeddings) }
        if let scaleDecoderOutputs { object["scale_decoder_outputs"] = .bool(scaleDecoderOutputs) }
        object["pad_token_id"] = .integer(padTokenID)
        object["eos_token_id"] = eosTokenIDs.count == 1 ? .integer(eosTokenIDs[0]) : .array(eosTokenIDs.map { .integer($0) })
        object["decoder_start_token_id"] = .integer(decoderStartTokenID)
        return object
    }

    /// `architectures` as written (the transformers classes the checkpoint was saved from); empty when absent.
    public var architectures: [String] {
        guard case .array(let names)? = json?["architectures"] else { return [] }
        return names.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
    }

    /// Whether `architectures` names an encoder-only class (`T5EncoderModel`, `MT5EncoderModel`, `UMT5EncoderModel`).
    public var namesEncoderOnlyArchitecture: Bool {
        architectures.contains { $0.hasSuffix("EncoderModel") }
    }

    public static func == (lhs: T5Config, rhs: T5Config) -> Bool {
        lhs.variant == rhs.variant && lhs.vocabSize == rhs.vocabSize && lhs.dModel == rhs.dModel && lhs.dKV == rhs.dKV
            && lhs.dFF == rhs.dFF && lhs.numLayers == rhs.numLayers
            && lhs.numDecoderLayers == rhs.numDecoderLayers && lhs.numHeads == rhs.numHeads
            && lhs.relativeAttentionNumBuckets == rhs.relativeAttentionNumBuckets
            && lhs.relativeAttentionMaxDistance == rhs.relativeAttentionMaxDistance
            && lhs.layerNormEpsilon == rhs.layerNormEpsilon && lhs.dropoutRate == rhs.dropoutRate
            && lhs.feedForwardProj == rhs.feedForwardProj && lhs.tieWordEmbeddings == rhs.tieWordEmbeddings
            && lhs.scaleDecoderOutputs == rhs.scaleDecoderOutputs && lhs.padTokenID == rhs.padTokenID
            && lhs.eosTokenIDs == rhs.eosTokenIDs && lhs.decoderStartTokenID == rhs.decoderStartTokenID
            && lhs.isGatedActivation == rhs.isGatedActivation && lhs.activation == rhs.activation
    }
}
