import Foundation
import Testing
@testable import T5

/// The parameter table's roles against the keys transformers wrote: every fixture checkpoint (saved by
/// `save_pretrained` in tools/make_*_fixtures.py) holds exactly the keys the roles compute, with the table's
/// shapes; and a tensor the table does not know is refused by name.
@Suite struct ParameterRoleTests {
    /// T5 (tied, relu), v1.1 (gated-gelu, untied), a gated-silu bf16 and an f16 legacy T5, ByT5, UMT5 (a bias
    /// per block), and the encoder-only T5 and UMT5.
    static let checkpoints = [
        "t5-relu-tied", "t5v11-gated-gelu", "t5-gated-silu-bf16", "t5-gelu-f16-legacy", "byt5-tiny",
        "umt5-tiny", "t5-encoder-tiny", "umt5-encoder-tiny",
    ]

    @Test(arguments: checkpoints)
    func rolesComputeExactlyTheKeysTransformersSaved(name: String) throws {
        let directory = Fixtures.modelDirectory(name)
        let config = try T5Config.load(from: directory.appendingPathComponent("config.json"))
        let archive = try SafeTensorsArchive(directory: directory)
        let saved = Set(archive.keys)
        let decoder = saved.contains { $0.hasPrefix("decoder.") }
        let specs = T5Parameters.specs(for: config, separateLMHead: saved.contains("lm_head.weight"), decoder: decoder)
        // One key per role and one role per key.
        #expect(Set(specs.map(\.role)).count == specs.count)
        #expect(Set(specs.map(\.key)).count == specs.count)
        // The file's keys are the table's, beside the embedding aliases transformers also saves.
        let extra = saved.subtracting(specs.map(\.key))
        #expect(extra.isSubset(of: T5Parameters.tolerated(decoder: decoder)), "\(name): keys no role names: \(extra.sorted())")
        let absent = Set(specs.map(\.key)).subtracting(saved)
        #expect(absent.isEmpty, "\(name): roles whose key the file lacks: \(absent.sorted())")
        for spec in specs {
            #expect(archive.info(spec.key)?.shape == spec.shape, "\(name): \(spec.key)")
            #expect(spec.key == spec.role.key)
        }
    }

    /// What each role is, read from transformers' names: the roles' kinds partition the saved keys as the
    /// module names do (`layer_norm`, `relative_attention_bias`, q/k/v/o and wi/wo of the sub-layers).
    @Test(arguments: checkpoints)
    func rolesAgreeWithTheModuleNames(name: String) throws {
        let directory = Fixtures.modelDirectory(name)
        let config = try T5Config.load(from: directory.appendingPathComponent("config.json"))
        let saved = try SafeTensorsArchive(directory: directory).keys
        let decoder = saved.contains { $0.hasPrefix("decoder.") }
        let specs = T5Parameters.specs(for: config, separateLMHead: saved.contains("lm_head.weight"), decoder: decoder)
        for spec in specs {
            let key = spec.key
            switch spec.role {
            case .embedding: #expect(key == "shared.weight")
            case .lmHead: #expect(key == "lm_head.weight")
            case let .finalNorm(stack): #expect(key == "\(stack.rawValue).final_layer_norm.weight")
            case let .norm(stack, block, sub):
                #expect(key.hasPrefix("\(stack.rawValue).block.\(block).") && key.hasSuffix(".layer_norm.weight"), "\(key)")
                #expect(sub != .crossAttention || stack == .decoder, "\(key)")
            case let .positionBias(stack, block):
                #expect(key == "\(stack.rawValue).block.\(block).layer.0.SelfAttention.relative_attention_bias.weight")
                #expect(block == 0 || config.variant == .umt5, "\(key)")
            case let .projection(stack, block, sub, projection):
                let module = ["selfAttention": "SelfAttention", "crossAttention": "EncDecAttention", "feedForward": "DenseReluDense"]["\(sub)"]!
                #expect(key.hasPrefix("\(stack.rawValue).block.\(block).layer.") && key.hasSuffix(".\(module).\(projection.rawValue).weight"), "\(key)")
            }
        }
        // Every relative_attention_bias and layer_norm key of the file has its role (the cross-attention bias
        // original T5 files carry aside).
        let biases = saved.filter { $0.contains("relative_attention_bias") && !$0.contains("EncDecAttention") }
        let biasRoles = specs.filter { if case .positionBias = $0.role { true } else { false } }
        #expect(biasRoles.count == biases.count && biases.count == (config.variant == .umt5 ? config.numLayers + (decoder ? config.numDecoderLayers : 0) : decoder ? 2 : 1))
        let norms = saved.filter { $0.hasSuffix("layer_norm.weight") }
        let normRoles = specs.filter { switch $0.role { case .norm, .finalNorm: true; default: false } }
        #expect(normRoles.count == norms.count)
    }

    /// The norm sub-layer index follows transformers' `layer` lists: the decoder's feed-forward is layer 2.
    @Test func subLayerIndicesFollowTheBlockLayout() {
        #expect(ParameterRole.norm(.encoder, block: 3, .feedForward).key == "encoder.block.3.layer.1.layer_norm.weight")
        #expect(ParameterRole.norm(.decoder, block: 3, .feedForward).key == "decoder.block.3.layer.2.layer_norm.weight")
        #expect(ParameterRole.projection(.decoder, block: 1, .crossAttention, .k).key == "decoder.block.1.layer.1.EncDecAttention.k.weight")
        #expect(ParameterRole.projection(.encoder, block: 0, .feedForward, .wiGate).key == "encoder.block.0.layer.1.DenseReluDense.wi_0.weight")
        #expect(ParameterRole.projection(.decoder, block: 5, .selfAttention, .o).moved(toBlock: 1) == .projection(.decoder, block: 1, .selfAttention, .o))
    }

    /// A copy of `name`'s directory whose safetensors also holds `extra` (zero tensors of shape [4]).
    func directory(_ name: String, adding extra: [String]) throws -> URL {
        let source = Fixtures.modelDirectory(name)
        let dir = try scratchDirectory("roles-\(name)")
        for file in try FileManager.default.contentsOfDirectory(atPath: source.path) where file != "model.safetensors" {
            try FileManager.default.copyItem(at: source.appendingPathComponent(file), to: dir.appendingPathComponent(file))
        }
        let archive = try SafeTensorsArchive(directory: source)
        var tensors = [String: Tensor]()
        for key in archive.keys { tensors[key] = try archive.tensor(key) }
        for key in extra { tensors[key] = Tensor(zeros: [4]) }
        try SafeTensorsWriter.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
        return dir
    }

    func loadFailure(_ dir: URL) -> String? {
        do {
            _ = try T5Model(directory: dir)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// A tensor no role names is refused, by name, whichever part of the checkpoint it is in; so is a decoder
    /// alias in an encoder-only file and an int8 scale beside no projection. The untouched files load.
    @Test(arguments: [
        ("t5-relu-tied", "encoder.block.0.layer.0.SelfAttention.q.bias"),
        ("t5-relu-tied", "decoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"),
        ("t5v11-gated-gelu", "decoder.block.0.layer.2.DenseReluDense.wi.weight"),
        ("t5v11-gated-gelu", "shared.weight_scale"),
        ("umt5-tiny", "encoder.block.0.layer.1.EncDecAttention.q.weight"),
        ("t5-encoder-tiny", "decoder.embed_tokens.weight"),
        ("t5-relu-tied", "pooler.dense.weight"),
    ])
    func anUnexpectedTensorIsReportedByName(name: String, extra: String) throws {
        #expect(loadFailure(Fixtures.modelDirectory(name)) == nil)
        let dir = try directory(name, adding: [extra])
        defer { try? FileManager.default.removeItem(at: dir) }
        let failure = try #require(loadFailure(dir), "\(name) with \(extra) loaded")
        #expect(failure.contains(extra), "\(failure)")
    }

    /// The tolerated extras (embedding aliases equal to `shared`, the unused cross-attention bias) still load.
    @Test func toleratedExtrasLoad() throws {
        let dir = try directory("t5-relu-tied", adding: ["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(loadFailure(dir) == nil)
    }

    /// The public tensor reads without exposing its memory for writing.
    @Test func tensorReadsThroughABufferPointer() {
        let t = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        #expect(t.withUnsafeBufferPointer { Array($0) } == [1, 2, 3, 4, 5, 6])
        #expect(t.withUnsafeBufferPointer { $0.count } == t.count)
        #expect(t.array == [1, 2, 3, 4, 5, 6])
    }
}
