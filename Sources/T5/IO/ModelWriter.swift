import Foundation

extension T5Model {
    /// Writes `config.json` and `model.safetensors` for this model into `directory` (created if needed),
    /// atomically file by file. fp32 projections are written as F32 (the file transformers loads);
    /// bf16 ones as BF16; int8 ones as I8 with their per-row scales in `<key>_scale` (F32), a layout only
    /// this runtime reads. A tied LM head held in low precision is written as `lm_head.weight`, since it
    /// is then a separate (converted) copy of the embedding; int8 goes to `model.int8.safetensors`, which
    /// transformers does not look for. The caller copies the tokenizer's files.
    public func write(to directory: URL) throws(T5Error) {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw .writeFailed(path: directory.path, reason: error.localizedDescription)
        }
        var keep = [AnyObject]()  // widened copies stay alive until written
        var raw = [String: SafeTensorsWriter.RawTensor]()
        func add(_ key: String, _ t: Tensor) {
            keep.append(t.storage)
            raw[key] = .init(dtype: "F32", shape: t.shape, bytes: UnsafeRawBufferPointer(start: t.pointer, count: 4 * t.count))
        }
        for (key, t) in weights.tensorsByKey { add(key, t) }
        for (key, m) in weights.matricesByKey {
            var name = key
            if key == T5Parameters.shared {
                // tied: the embedding already holds it; an encoder-only model has no head at all
                if m.precision == .f32 || !hasDecoder { continue }
                name = T5Parameters.lmHead
            }
            switch m.storage {
            case let .f32(t):
                add(name, t)
            case let .bf16(p):
                raw[name] = .init(dtype: "BF16", shape: [m.rows, m.cols], bytes: UnsafeRawBufferPointer(start: p, count: 2 * m.rows * m.cols))
            case let .int8(p, scales):
                raw[name] = .init(dtype: "I8", shape: [m.rows, m.cols], bytes: UnsafeRawBufferPointer(start: p, count: m.rows * m.cols))
                add(name + Self.int8ScaleSuffix, scales)
            }
        }
        let precision = weights.matricesByKey.values.first?.precision ?? .f32
        // int8 under its own name: transformers would load I8 tensors as if they were weights and answer
        // garbage; finding no model.safetensors, it refuses the directory instead ("Error no file named
        // model.safetensors, or pytorch_model.bin, found in directory", 5.24). A quantization_config naming a
        // quant_method it does not know is no mark: AutoHfQuantizer.supports_quant_method warns, the
        // quantization is skipped and the tensors load.
        let name = precision == .int8 ? SafeTensorsArchive.int8FileName : "model.safetensors"
        try SafeTensorsWriter.writeRaw(raw, to: directory.appendingPathComponent(name),
                                       metadata: ["format": "pt", "t5.weights": precision.rawValue])
        withExtendedLifetime(keep) {}
        try AtomicFile.write(config.jsonData(), to: directory.appendingPathComponent("config.json"))
    }

    /// The precision the projections are held in.
    public var weightPrecision: WeightPrecision {
        weights.lmHead.precision
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
