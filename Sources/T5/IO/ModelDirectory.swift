import Foundation

/// What a model directory holds besides the weights — the config (with any changes), the tokenizer's files and
/// the generation config — and the one writer of a model directory in the Hugging Face layout. `t5 convert`,
/// training checkpoints (`Checkpoint`) and the trainer all write through `write`.
///
/// ```
/// DIR/config.json               the config, with `configUpdates` applied
/// DIR/model.safetensors         the weights (model.int8.safetensors for int8 projections)
/// DIR/spiece.model              the tokenizer's files (ByT5: tokenizer_config.json, added_tokens.json)
/// DIR/generation_config.json    as given, else the one transformers derives from the config
/// ```
///
/// Each file is replaced atomically (`AtomicFile`). The caller chooses the directory: a new or empty one
/// (`OutputDirectory`), or a checkpoint's temporary directory.
public struct ModelDirectory: Sendable {
    public var config: T5Config
    /// Top-level keys to change in config.json (e.g. `dropout_rate` after `--dropout`).
    public var configUpdates: [String: JSONValue]
    /// The tokenizer's files (name → bytes): `spiece.model`, or ByT5's tokenizer_config.json, ...
    public var tokenizerFiles: [String: Data]
    /// generation_config.json bytes; nil writes the one transformers derives from the config (a model that
    /// can generate only: an encoder-only model gets none, as `save_pretrained` writes one iff `can_generate()`).
    public var generationConfig: Data?

    public init(config: T5Config, configUpdates: [String: JSONValue] = [:], tokenizer: any Tokenizer, generationConfig: Data? = nil) {
        self.config = config
        self.configUpdates = configUpdates
        self.tokenizerFiles = tokenizer.files
        self.generationConfig = generationConfig
    }

    /// The files of an existing model directory: `config`, its tokenizer's files and its generation_config.json
    /// (if any).
    public static func copying(from directory: URL, config: T5Config) throws(T5Error) -> ModelDirectory {
        let generation = try? Data(contentsOf: directory.appendingPathComponent(generationConfigFile))
        return ModelDirectory(config: config, tokenizer: try TokenizerDirectory.load(directory), generationConfig: generation)
    }

    static let configFile = "config.json"
    static let weightsFile = "model.safetensors"
    static let generationConfigFile = "generation_config.json"

    /// Writes fp32 parameter values (a trainer's, by checkpoint key) in `specs`' table, as transformers'
    /// `save_pretrained` does: F32, no runtime mark, a tied LM head not stored (it is `shared.weight`).
    /// `metadata` is added to the safetensors header (a checkpoint's step).
    public func write(weights values: [String: Tensor], specs: [ParameterSpec], to directory: URL, metadata: [String: String] = [:]) throws(T5Error) {
        var weights = [String: StoredTensor]()
        for spec in specs {
            guard let t = values[spec.key] else {
                throw .writeFailed(path: directory.path, reason: "no value for tensor \(spec.key)")
            }
            weights[spec.key] = .f32(t)
        }
        let generates = specs.contains { $0.role.stack == .decoder }
        try write(weights: weights, precision: nil, to: directory, metadata: metadata, generates: generates)
    }

    /// Writes `model`'s weights in the precision it holds its projections in (fp32, bf16 or int8; see
    /// `writeWeightsAndConfig` for the layout), marked so that the directory loads back at that precision.
    /// `directory` must be new or empty (`OutputDirectory`: never beside files we did not write); the files
    /// are written into a hidden sibling renamed into place when complete, so a failure leaves nothing.
    public func write(_ model: T5Model, to directory: URL) throws(T5Error) {
        try OutputDirectory.writeAtomically(directory, option: "ModelDirectory.write(_:to:)") { (temporary: URL) throws(T5Error) in
            try write(weights: model.storedWeights(), precision: model.weightPrecision, to: temporary, metadata: [:], generates: model.hasDecoder)
        }
    }

    /// The writer: the weights file, then config.json, the tokenizer's files and generation_config.json.
    /// `precision`: the precision the projections are stored in, recorded as the `t5.weights` mark that
    /// `t5 convert` leaves (and `T5Model(directory:)` loads at); nil for fp32 values saved as transformers would.
    func write(weights: [String: StoredTensor], precision: WeightPrecision?, to directory: URL, metadata: [String: String], generates: Bool) throws(T5Error) {
        try writeWeightsAndConfig(weights, precision: precision, to: directory, metadata: metadata)
        for (name, bytes) in tokenizerFiles.sorted(by: { $0.key < $1.key }) {
            try AtomicFile.write(bytes, to: directory.appendingPathComponent(name))
        }
        if let bytes = generationConfig ?? (generates ? derivedGenerationConfig() : nil) {
            try AtomicFile.write(bytes, to: directory.appendingPathComponent(Self.generationConfigFile))
        }
    }

    /// The weights file and config.json only (`T5Model.write(to:)`).
    ///
    /// fp32 projections are written as F32 (the file transformers loads); bf16 ones as BF16; int8 ones as I8
    /// with their per-row scales beside them (F32), a layout only this runtime reads, in
    /// `model.int8.safetensors`: transformers would load I8 tensors as if they were weights and answer
    /// garbage; finding no model.safetensors, it refuses the directory instead ("Error no file named
    /// model.safetensors, or pytorch_model.bin, found in directory", 5.24). A quantization_config naming a
    /// quant_method it does not know is no mark: AutoHfQuantizer.supports_quant_method warns, the
    /// quantization is skipped and the tensors load.
    func writeWeightsAndConfig(_ weights: [String: StoredTensor], precision: WeightPrecision?, to directory: URL, metadata: [String: String]) throws(T5Error) {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw .writeFailed(path: directory.path, reason: "cannot create the directory: \(error.localizedDescription)")
        }
        var raw = [String: SafeTensorsWriter.RawTensor]()
        for (key, stored) in weights {
            let m: WeightMatrix
            switch stored {
            case let .f32(t):
                raw[key] = .init(dtype: "F32", shape: t.shape, bytes: UnsafeRawBufferPointer(start: t.pointer, count: 4 * t.count))
                continue
            case let .matrix(matrix):
                m = matrix
            }
            switch m.storage {
            case let .f32(t):
                raw[key] = .init(dtype: "F32", shape: t.shape, bytes: UnsafeRawBufferPointer(start: t.pointer, count: 4 * t.count))
            case let .bf16(p):
                raw[key] = .init(dtype: "BF16", shape: [m.rows, m.cols], bytes: UnsafeRawBufferPointer(start: p, count: 2 * m.rows * m.cols))
            case let .int8(p, scales):
                raw[key] = .init(dtype: "I8", shape: [m.rows, m.cols], bytes: UnsafeRawBufferPointer(start: p, count: m.rows * m.cols))
                let scaleKey = T5Parameters.int8Scales(of: key)
                raw[scaleKey] = .init(dtype: "F32", shape: scales.shape, bytes: UnsafeRawBufferPointer(start: scales.pointer, count: 4 * scales.count))
            }
        }
        var meta = metadata
        meta["format"] = "pt"
        if let precision { meta["t5.weights"] = precision.rawValue }
        let name = precision == .int8 ? SafeTensorsArchive.int8FileName : Self.weightsFile
        // The tensors and matrices own (or keep alive) the memory the raw views point into until the file is written.
        try withExtendedLifetime(weights) { () throws(T5Error) in
            try SafeTensorsWriter.writeRaw(raw, to: directory.appendingPathComponent(name), metadata: meta)
        }
        try AtomicFile.write(config.jsonData(updating: configUpdates), to: directory.appendingPathComponent(Self.configFile))
    }

    /// A tensor to store: an fp32 one (embedding, norm, bias, a trainer's value) or a projection as held.
    enum StoredTensor {
        case f32(Tensor)
        case matrix(WeightMatrix)
    }

    /// `GenerationConfig.from_model_config(config)` as `save_pretrained` writes it.
    func derivedGenerationConfig() -> Data {
        var object = JSONObject()
        object["_from_model_config"] = .bool(true)
        object["decoder_start_token_id"] = .integer(config.decoderStartTokenID)
        object["eos_token_id"] = config.eosTokenIDs.count == 1 ? .integer(config.eosTokenID) : .array(config.eosTokenIDs.map { .integer($0) })
        object["pad_token_id"] = .integer(config.padTokenID)
        object["transformers_version"] = .string("5.24.0")
        var bytes = JSONWriter.serialize(.object(object), style: .pythonIndented)
        bytes.append(UInt8(ascii: "\n"))
        return Data(bytes)
    }
}

extension T5Model {
    /// Writes `config.json` and the weights (see `ModelDirectory.writeWeightsAndConfig`), without the
    /// tokenizer's files or a generation config: `ModelDirectory.write(_:to:)` writes a whole directory.
    func write(to directory: URL) throws(T5Error) {
        try ModelDirectory(config: config, tokenizer: tokenizer)
            .writeWeightsAndConfig(storedWeights(), precision: weightPrecision, to: directory, metadata: [:])
    }

    /// Every tensor to store, by checkpoint key, as held. A tied LM head held in low precision is stored as
    /// `lm_head.weight`, since it is then a separate (converted) copy of the embedding; an fp32 tied head is the
    /// embedding itself, and an encoder-only model has no head at all.
    func storedWeights() -> [String: ModelDirectory.StoredTensor] {
        var stored = [String: ModelDirectory.StoredTensor]()
        for (key, t) in weights.tensorsByKey { stored[key] = .f32(t) }
        for (key, m) in weights.matricesByKey {
            if key == ParameterRole.embedding.key {
                if m.precision == .f32 || !hasDecoder { continue }
                stored[ParameterRole.lmHead.key] = .matrix(m)
            } else {
                stored[key] = .matrix(m)
            }
        }
        return stored
    }

    /// The precision the projections are held in (an encoder-only model's stand-in head is the fp32
    /// embedding, so its encoder's projections say).
    public var weightPrecision: WeightPrecision {
        weights.encoderBlocks.first?.selfAttention.q.precision ?? weights.lmHead.precision
    }

    /// Bytes of weights a decode step reads (every decoder projection and the LM head), for the
    /// bandwidth limit `t5 bench` reports.
    public var decodeWeightBytes: Int {
        var total = weights.lmHead.byteCount
        for block in weights.decoderBlocks {
            let a = block.selfAttention
            total += a.q.byteCount + a.k.byteCount + a.v.byteCount + a.o.byteCount
            if let c = block.crossAttention { total += c.q.byteCount + c.o.byteCount }
            total += block.feedForward.weights.projections.reduce(0) { $0 + $1.byteCount }
        }
        return total
    }
}
