import Foundation

extension T5Model {
    /// Loads a model directory in the Hugging Face layout: `config.json`, `model.safetensors` (or shards
    /// with `model.safetensors.index.json`) and `spiece.model`.
    ///
    /// F32 weights are used in place from the memory-mapped file; F16 and BF16 ones are widened once.
    /// With `weights: .bf16` or `.int8` the projections are held in that precision: used in place when the
    /// checkpoint already stores them so (`t5 convert --weights`), converted once otherwise (and the fp32
    /// pages released). The variant comes from `config.json` and is then checked against the tensors
    /// present: every missing tensor is reported at once, then the first wrongly shaped one.
    ///
    /// `packWeights` (fp32 on an AVX-512 CPU): pack the weights that multiply many rows at a time (the
    /// encoder's, and the cross-attention key/value projections) once, for the packed sgemm, releasing the
    /// originals' pages. Pass false for a model that is loaded to be trained or converted, which would
    /// never use the packed copy.
    ///
    /// `weights: nil` (the default) holds the projections as the directory was saved by `t5 convert`
    /// (the `t5.weights` mark in its safetensors metadata), else in fp32.
    public init(directory: URL, weights precision: WeightPrecision? = nil, packWeights: Bool = true) throws(T5Error) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) else {
            throw .missingFile(path: directory.path)
        }
        guard isDirectory.boolValue else {
            throw .unreadableFile(path: directory.path, reason: "not a directory (a model is a directory with config.json, model.safetensors and spiece.model)")
        }
        let config = try T5Config.load(from: directory.appendingPathComponent("config.json"))
        let archive = try SafeTensorsArchive(directory: directory)
        let tokenizer = try TokenizerDirectory.load(directory)
        if tokenizer.size > config.vocabSize {
            throw .invalidConfig(
                path: directory.appendingPathComponent("config.json").path,
                reason: "vocab_size \(config.vocabSize) is smaller than the tokenizer's \(tokenizer.size) tokens")
        }
        let generationPath = directory.appendingPathComponent("generation_config.json")
        let generation = try GenerationConfig.load(from: generationPath)
        try generation?.validate(vocabSize: config.vocabSize, path: generationPath.path)
        try self.init(
            config: config, archive: archive, tokenizer: tokenizer, path: directory.path,
            precision: precision ?? Self.savedPrecision(archive), packWeights: packWeights, generationConfig: generation)
    }

    /// The precision `t5 convert` saved the projections in (its `t5.weights` metadata), else fp32.
    static func savedPrecision(_ archive: SafeTensorsArchive) -> WeightPrecision {
        archive.metadata["t5.weights"].flatMap(WeightPrecision.init(rawValue:)) ?? .f32
    }

    /// Builds the model from an opened checkpoint archive.
    init(
        config: T5Config, archive: SafeTensorsArchive, tokenizer: any Tokenizer, path: String,
        precision: WeightPrecision = .f32, packWeights: Bool = true, generationConfig: GenerationConfig? = nil
    ) throws(T5Error) {
        // An encoder-only checkpoint (saved from T5EncoderModel, MT5EncoderModel, UMT5EncoderModel) holds
        // `shared.weight` and `encoder.*`: so named by `architectures`, or by the absence of every decoder
        // tensor. Its decoder tensors, if any, are then refused as tensors the model does not use.
        let hasDecoder = !config.namesEncoderOnlyArchitecture
            && archive.keys.contains { T5Parameters.blockIndex(of: $0, in: .decoder) != nil || $0 == ParameterRole.finalNorm(.decoder).key || $0 == ParameterRole.lmHead.key }
        try Self.checkLayerCounts(config, archive: archive, path: path, decoder: hasDecoder)
        // transformers 5 ties the LM head to `shared` unless the file carries its own `lm_head.weight`.
        let separateLMHead = hasDecoder && archive.info(ParameterRole.lmHead.key) != nil
        let specs = T5Parameters.specs(for: config, separateLMHead: separateLMHead, decoder: hasDecoder)
        let missing = specs.filter { archive.info($0.key) == nil }.map(\.key)
        if !missing.isEmpty { throw .missingTensors(path: path, keys: missing) }
        // A tensor the variant does not read means the checkpoint is another variant (a UMT5 file whose
        // model_type says t5 would otherwise run every block with block 0's bias): refused, never ignored.
        let tolerated = T5Parameters.tolerated(decoder: hasDecoder)
        let roles = Dictionary(uniqueKeysWithValues: specs.map { ($0.key, $0.role) })
        // Per-row int8 scales sit beside projections only (`t5 convert --weights int8`).
        let int8Scales = Set(specs.filter { $0.role.isProjection }.map { T5Parameters.int8Scales(of: $0.key) })
        let unexpected = archive.keys.filter { roles[$0] == nil && !tolerated.contains($0) && !int8Scales.contains($0) }
        let aliases = T5Parameters.embeddingAliases(decoder: hasDecoder)
        // transformers ties the per-stack embeddings to `shared` on load; a file whose aliases hold another
        // table would make it compute with `shared` anyway, so such a file is refused rather than half-read.
        if let shared = archive.storedBytes(ParameterRole.embedding.key, alignment: 1), let sharedInfo = archive.info(ParameterRole.embedding.key) {
            for alias in aliases {
                guard let info = archive.info(alias), let stored = archive.storedBytes(alias, alignment: 1) else { continue }
                if info != sharedInfo || stored.byteCount != shared.byteCount || memcmp(stored.pointer, shared.pointer, shared.byteCount) != 0 {
                    throw .corruptCheckpoint(path: path, reason: "\(alias) differs from \(ParameterRole.embedding.key); this runtime (like transformers) computes with one shared embedding table")
                }
            }
        }
        if !unexpected.isEmpty {
            let shown = unexpected.prefix(3).joined(separator: ", ") + (unexpected.count > 3 ? " and \(unexpected.count - 3) more" : "")
            throw .invalidConfig(
                path: URL(fileURLWithPath: path).appendingPathComponent("config.json").path,
                reason: hasDecoder
                    ? "the checkpoint has tensors a model_type '\(config.variant.rawValue)' model does not use (\(shown)); is model_type right?"
                    : "architectures names \(config.variant.encoderArchitecture), an encoder-only model, but the checkpoint has tensors it does not use (\(shown))")
        }
        for spec in specs {
            guard let info = archive.info(spec.key) else { continue }
            if info.shape != spec.shape { throw .wrongShape(key: spec.key, expected: spec.shape, actual: info.shape) }
        }
        try Self.checkFinite(specs.map(\.key), archive: archive, releasing: precision != .f32)
        // Projections (and an untied LM head) may change precision; the rest stays fp32.
        let projectionKeys = Set(specs.filter { $0.role.isProjection }.map(\.key))
        var tensors = [String: Tensor]()
        var matrices = [String: WeightMatrix]()
        for spec in specs where !projectionKeys.contains(spec.key) {
            tensors[spec.key] = try archive.tensor(spec.key)
        }
        for key in projectionKeys.sorted() {
            matrices[key] = try Self.loadMatrix(key, from: archive, precision: precision)
        }
        if !separateLMHead && hasDecoder {
            // The tied LM head is the shared embedding; in low precision it is a converted copy, while lookups
            // keep reading the fp32 rows (only those of the tokens seen become resident).
            matrices[ParameterRole.embedding.key] = tensors[ParameterRole.embedding.key].map { WeightMatrix($0).converted(to: precision) }
            if precision != .f32 { archive.releasePages(of: ParameterRole.embedding.key) }
        }
        // Every encode multiplies the encoder's weights by a new block of rows, and so does the projection of
        // the cross-attention keys and values (once per request, from the encoder output): their panels are
        // packed once here, several weights at a time across the threads, and the originals' pages released
        // (the packed copy replaces them in memory; they are read back from the file if ever needed). The
        // decoder's other weights serve decode steps of a few rows, which read them unpacked.
        // A packed weight's pages must not have been written (the released pages would revert to the file's
        // bytes): nothing writes into the mapping, and training works on copies.
        let packKeys = !packWeights ? [] : matrices.keys.filter { key in
            switch roles[key] {
            case .projection(.encoder, _, _, _), .projection(.decoder, _, .crossAttention, .k), .projection(.decoder, _, .crossAttention, .v): true
            default: false
            }
        }.sorted()
        let unpacked = matrices
        var packed = [WeightMatrix?](repeating: nil, count: packKeys.count)
        packed.withUnsafeMutableBufferPointer { out in
            Parallel.run(packKeys.count) { i in out[i] = unpacked[packKeys[i]]?.packedForProducts() }
        }
        for (key, matrix) in zip(packKeys, packed) where matrix?.packed != nil {
            matrices[key] = matrix
            archive.releasePages(of: key)
        }
        let weights = T5Weights(
            config: config, separateLMHead: separateLMHead, decoder: hasDecoder,
            tensor: { key in
                guard let t = tensors[key] else { preconditionFailure("parameter table and T5Weights disagree on \(key)") }
                return t
            },
            matrix: { key in
                // An encoder-only model has no LM head; the embedding stands in for the never-used slot.
                if !hasDecoder && key == ParameterRole.embedding.key, let t = tensors[key] { return WeightMatrix(t) }
                guard let m = matrices[key] else { preconditionFailure("parameter table and T5Weights disagree on \(key)") }
                return m
            })
        self.init(config: config, weights: weights, tokenizer: tokenizer, hasSeparateLMHead: separateLMHead, generationConfig: generationConfig)
    }

    /// The layer counts of config.json must be those of the checkpoint, checked before the parameter table
    /// is built from them: a count larger than the file's would list (and loop over) blocks that are not
    /// there, and a smaller one would silently drop the blocks past it. The sizes are then bounded by the
    /// tensors' shapes, which the table is compared with.
    static func checkLayerCounts(_ config: T5Config, archive: SafeTensorsArchive, path: String, decoder: Bool = true) throws(T5Error) {
        var counts = [(Stack.encoder, "num_layers", config.numLayers)]
        if decoder { counts.append((.decoder, "num_decoder_layers", config.numDecoderLayers)) }
        for (stack, key, count) in counts {
            let blocks = archive.keys.compactMap { T5Parameters.blockIndex(of: $0, in: stack) }.max().map { $0 + 1 } ?? 0
            if blocks != count {
                throw .invalidConfig(
                    path: URL(fileURLWithPath: path).appendingPathComponent("config.json").path,
                    reason: "\(key) is \(count) but the checkpoint has \(blocks) \(stack.rawValue) blocks")
            }
        }
    }

    /// Every weight the model uses must be finite: one NaN or infinity turns every output into NaN (which
    /// decodes as an empty line), and a conversion to int8 would hide it. The stored bytes are scanned once,
    /// tensors spread over the threads, before any conversion; the first bad tensor in table order is named.
    /// `releasing`: give the scanned pages back (weights about to be converted to another precision, which
    /// would otherwise all be resident at once before the conversion releases them one by one).
    static func checkFinite(_ keys: [String], archive: SafeTensorsArchive, releasing: Bool) throws(T5Error) {
        var scanned = [String]()
        for key in keys {
            scanned.append(key)
            if archive.info(key)?.dtype == "I8" { scanned.append(T5Parameters.int8Scales(of: key)) }
        }
        var finite = [Bool](repeating: true, count: scanned.count)
        finite.withUnsafeMutableBufferPointer { out in
            Parallel.run(scanned.count) { i in
                guard let info = archive.info(scanned[i]), let stored = archive.storedBytes(scanned[i], alignment: 1) else { return }
                let encoding: FiniteCheck.Encoding
                switch info.dtype {
                case "F32": encoding = .f32
                case "BF16": encoding = .bf16
                case "F16": encoding = .f16
                default: return
                }
                let count = stored.byteCount / (encoding == .f32 ? 4 : 2)
                out[i] = FiniteCheck.storedIsFinite(stored.pointer, count: count, encoding: encoding)
                if releasing { archive.releasePages(of: scanned[i]) }
            }
        }
        if let bad = finite.firstIndex(of: false) {
            let file = archive.mapping(of: scanned[bad])?.path ?? archive.path
            throw .nonFinite(what: "tensor \(scanned[bad]) of \(file)")
        }
    }

    /// One projection in `precision`: a view of the file when it stores exactly that, else a conversion.
    static func loadMatrix(_ key: String, from archive: SafeTensorsArchive, precision: WeightPrecision) throws(T5Error) -> WeightMatrix {
        guard let info = archive.info(key) else { throw .missingTensors(path: archive.path, keys: [key]) }
        let rows = info.shape[0], cols = info.shape[1]
        switch info.dtype {
        case "I8":
            let scaleKey = T5Parameters.int8Scales(of: key)
            guard archive.info(scaleKey)?.shape == [rows] else {
                throw .missingTensors(path: archive.path, keys: [scaleKey])
            }
            guard let stored = archive.storedBytes(key, alignment: 1) else {
                throw .corruptCheckpoint(path: archive.path, reason: "no data for \(key)")
            }
            let matrix = WeightMatrix(
                rows: rows, cols: cols, int8: stored.pointer.assumingMemoryBound(to: Int8.self),
                scales: try archive.tensor(scaleKey), owner: stored.owner)
            return matrix.converted(to: precision)
        case "BF16" where precision == .bf16:
            if let stored = archive.storedBytes(key, alignment: 2) {
                return WeightMatrix(rows: rows, cols: cols, bf16: stored.pointer.assumingMemoryBound(to: UInt16.self), owner: stored.owner)
            }
            return WeightMatrix(try archive.tensor(key)).converted(to: precision)
        default:
            let matrix = WeightMatrix(try archive.tensor(key)).converted(to: precision)
            if precision != .f32 && info.dtype == "F32" { archive.releasePages(of: key) }
            return matrix
        }
    }
}
