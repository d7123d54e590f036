import Foundation
import Testing
@testable import T5

@Suite struct FreezingTests {
    /// A 12-block encoder, so that `encoder.block.1` and `encoder.block.10` can be told apart.
    let config = T5Config(vocabSize: 32, dModel: 8, dKV: 2, dFF: 16, numLayers: 12, numDecoderLayers: 2, numHeads: 4)
    var tied: [ParameterSpec] { T5Parameters.specs(for: config, separateLMHead: false) }
    var untied: [ParameterSpec] { T5Parameters.specs(for: config, separateLMHead: true) }

    func keys(_ specs: [String], _ table: [ParameterSpec]) throws -> Set<String> {
        try Freezing.frozenKeys(specs, parameters: table)
    }

    @Test func namedGroups() throws {
        #expect(try keys(["embeddings"], tied) == ["shared.weight"])
        let encoder = try keys(["encoder"], tied)
        #expect(encoder == Set(tied.map(\.key).filter { $0.hasPrefix("encoder.") }))
        #expect(encoder.contains("encoder.final_layer_norm.weight"))
        #expect(encoder.contains("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"))
        #expect(!encoder.contains("shared.weight"))
        let decoder = try keys(["decoder"], untied)
        #expect(decoder == Set(untied.map(\.key).filter { $0.hasPrefix("decoder.") }))
        #expect(!decoder.contains("lm_head.weight"))
        // lm-head: its own tensor when untied; the shared embedding (which is the head) when tied.
        #expect(try keys(["lm-head"], untied) == ["lm_head.weight"])
        #expect(try keys(["lm-head"], tied) == ["shared.weight"])
    }

    @Test func blockRangesAreInclusiveAndExact() throws {
        let selected = try keys(["encoder.block.0-3"], tied)
        let expected = Set(tied.map(\.key).filter { key in (0...3).contains { key.hasPrefix("encoder.block.\($0).") } })
        #expect(selected == expected)
        #expect(selected.contains("encoder.block.3.layer.1.DenseReluDense.wo.weight"))
        #expect(!selected.contains { $0.hasPrefix("encoder.block.10.") || $0.hasPrefix("encoder.block.4.") })
        // A range inside a longer prefix.
        let attention = try keys(["decoder.block.0-1.layer.1"], tied)
        #expect(attention.count == 2 * 5)  // cross-attention: layer norm + q, k, v, o, per block
        #expect(attention.allSatisfy { $0.contains(".layer.1.") })
    }

    @Test func prefixesMatchAtDotBoundaries() throws {
        let block1 = try keys(["encoder.block.1"], tied)
        #expect(!block1.isEmpty)
        #expect(block1.allSatisfy { $0.hasPrefix("encoder.block.1.") })
        let block10 = try keys(["encoder.block.10"], tied)
        #expect(block10.allSatisfy { $0.hasPrefix("encoder.block.10.") })
        // A full key, a trailing-dot prefix, comma lists and repeated specs.
        #expect(try keys(["decoder.final_layer_norm.weight"], tied) == ["decoder.final_layer_norm.weight"])
        #expect(try keys(["encoder.block.1."], tied) == block1)
        #expect(try keys(["embeddings,decoder.final_layer_norm", "encoder.block.1"], tied)
                == block1.union(["shared.weight", "decoder.final_layer_norm.weight"]))
        #expect(try keys(["shared"], tied) == ["shared.weight"])
    }

    @Test func specsThatSelectNothingAreErrors() {
        #expect(throws: T5Error.self) { try keys(["encoders"], tied) }
        #expect(throws: T5Error.self) { try keys(["lm_head"], tied) }  // tied: no such tensor
        #expect(throws: T5Error.self) { try keys(["encoder.block.1-12"], tied) }  // block 12 does not exist
        #expect(throws: T5Error.self) { try keys(["decoder.block.1-0"], tied) }  // reversed
        do {
            _ = try keys(["encoder.block.0-13"], tied)
            Issue.record("expected an error")
        } catch {
            #expect(String(describing: error) == "invalid value for Freezing.frozenKeys: 'encoder.block.0-13': encoder.block.12 matches no tensor")
        }
        do {
            _ = try keys(["nonsense"], tied)
            Issue.record("expected an error")
        } catch {
            #expect(String(describing: error).hasPrefix("invalid value for Freezing.frozenKeys: 'nonsense' matches no tensor"))
        }
        #expect(throws: Never.self) { try keys([], tied) }
    }
}
