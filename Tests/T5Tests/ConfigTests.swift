import Foundation
import Testing
@testable import T5

/// Parses `text` as config.json, returning the config or the error.
private func parse(_ text: String, path: String = "/m/config.json") -> Result<T5Config, T5Error> {
    Result { () throws(T5Error) in try T5Config(json: Data(text.utf8), path: path) }
}

private func invalidReason(_ text: String) -> String? {
    guard case .failure(.invalidConfig(let path, let reason)) = parse(text) else { return nil }
    #expect(path == "/m/config.json")
    return reason
}

/// config.json exactly as transformers 5.24 `T5Config(d_model=64, num_layers=2,
/// feed_forward_proj="gated-gelu", tie_word_embeddings=False, eos_token_id=[1, 2]).save_pretrained()`
/// wrote it.
private let transformersSaved = """
{
  "classifier_dropout": 0.0,
  "d_ff": 2048,
  "d_kv": 64,
  "d_model": 64,
  "dense_act_fn": "gelu_new",
  "dropout_rate": 0.1,
  "eos_token_id": [
    1,
    2
  ],
  "feed_forward_proj": "gated-gelu",
  "initializer_factor": 1.0,
  "is_decoder": false,
  "is_encoder_decoder": true,
  "is_gated_act": true,
  "layer_norm_epsilon": 1e-06,
  "model_type": "t5",
  "num_decoder_layers": 2,
  "num_heads": 8,
  "num_layers": 2,
  "pad_token_id": 0,
  "relative_attention_max_distance": 128,
  "relative_attention_num_buckets": 32,
  "scale_decoder_outputs": false,
  "tie_word_embeddings": true,
  "transformers_version": "5.24.0",
  "use_cache": true,
  "vocab_size": 32128
}

"""

/// The shape of a transformers 4.x Hub config (google/flan-t5-small's keys).
private let flanStyle = """
{"architectures": ["T5ForConditionalGeneration"], "d_ff": 1024, "d_kv": 64, "d_model": 512,
 "decoder_start_token_id": 0, "dense_act_fn": "gelu_new", "dropout_rate": 0.1, "eos_token_id": 1,
 "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0, "is_encoder_decoder": true,
 "is_gated_act": true, "layer_norm_epsilon": 1e-06, "model_type": "t5", "n_positions": 512,
 "num_decoder_layers": 8, "num_heads": 6, "num_layers": 8, "output_past": true, "pad_token_id": 0,
 "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32,
 "task_specific_params": {"summarization": {"prefix": "summarize: "}}, "tie_word_embeddings": false,
 "torch_dtype": "float32", "transformers_version": "4.23.1", "use_cache": true, "vocab_size": 32128}
"""

@Suite struct ConfigTests {
    @Test func emptyObjectGivesTransformersDefaults() throws {
        let c = try parse("{}").get()
        #expect(c == T5Config())
        #expect(c.vocabSize == 32128 && c.dModel == 512 && c.dKV == 64 && c.dFF == 2048)
        #expect(c.numLayers == 6 && c.numDecoderLayers == 6 && c.numHeads == 8)
        #expect(c.relativeAttentionNumBuckets == 32 && c.relativeAttentionMaxDistance == 128)
        #expect(c.layerNormEpsilon == 1e-6 && c.dropoutRate == 0.1)
        #expect(c.feedForwardProj == "relu" && c.activation == .relu && !c.isGatedActivation)
        #expect(c.tieWordEmbeddings == nil && c.scaleDecoderOutputs == nil && c.rescalesDecoderOutput)
        #expect(c.padTokenID == 0 && c.eosTokenID == 1 && c.eosTokenIDs == [1] && c.decoderStartTokenID == 0)
    }

    @Test func readsHubAndTransformersConfigs() throws {
        let flan = try parse(flanStyle).get()
        #expect(flan.dFF == 1024 && flan.numLayers == 8 && flan.numDecoderLayers == 8 && flan.numHeads == 6)
        #expect(flan.activation == .geluNew && flan.isGatedActivation)
        #expect(flan.tieWordEmbeddings == false && !flan.rescalesDecoderOutput)

        let saved = try parse(transformersSaved).get()
        #expect(saved.dModel == 64 && saved.numLayers == 2 && saved.numDecoderLayers == 2)
        #expect(saved.eosTokenIDs == [1, 2] && saved.eosTokenID == 1)
        #expect(saved.tieWordEmbeddings == true && saved.scaleDecoderOutputs == false && !saved.rescalesDecoderOutput)
    }

    @Test func numDecoderLayersDefaultsToNumLayers() throws {
        #expect(try parse(#"{"num_layers": 3}"#).get().numDecoderLayers == 3)
        #expect(try parse(#"{"num_layers": 3, "num_decoder_layers": null}"#).get().numDecoderLayers == 3)
        #expect(try parse(#"{"num_layers": 3, "num_decoder_layers": 5}"#).get().numDecoderLayers == 5)
    }

    @Test(arguments: [
        ("relu", Activation.relu, false),
        ("gelu", .gelu, false),
        ("gated-gelu", .geluNew, true),  // the backwards-compatibility special case
        ("gated-gelu_new", .geluNew, true),
        ("gated-silu", .silu, true),
        ("gated-relu", .relu, true),
        ("gelu_pytorch_tanh", .geluPytorchTanh, false),
        ("gated-gelu_10", .gelu10, true),
    ])
    func feedForwardProj(name: String, activation: Activation, gated: Bool) throws {
        let c = try parse(#"{"feed_forward_proj": "\#(name)"}"#).get()
        #expect(c.activation == activation)
        #expect(c.isGatedActivation == gated)
        #expect(c.feedForwardProj == name)
    }

    @Test func savedDerivedKeysOverrideFeedForwardProj() throws {
        // transformers sets leftover config keys after __post_init__, so these win.
        let c = try parse(#"{"feed_forward_proj": "gated-gelu", "dense_act_fn": "relu"}"#).get()
        #expect(c.activation == .relu && c.isGatedActivation)
        let d = try parse(#"{"feed_forward_proj": "relu", "is_gated_act": true}"#).get()
        #expect(d.activation == .relu && d.isGatedActivation)
        #expect(invalidReason(#"{"dense_act_fn": "xyz"}"#) == "unknown activation 'xyz' in dense_act_fn")
    }

    @Test func rejectsBadFeedForwardProj() {
        #expect(invalidReason(#"{"feed_forward_proj": "xyz"}"#) == "unknown activation 'xyz' in feed_forward_proj")
        #expect(invalidReason(#"{"feed_forward_proj": "gated-xyz"}"#) == "unknown activation 'xyz' in feed_forward_proj")
        #expect(invalidReason(#"{"feed_forward_proj": "prelu"}"#) == "unknown activation 'prelu' in feed_forward_proj")
        #expect(invalidReason(#"{"feed_forward_proj": "a-b"}"#)?.hasPrefix("feed_forward_proj: 'a-b' is not of the form") == true)
        #expect(invalidReason(#"{"feed_forward_proj": "gated-gelu-new"}"#)?.hasPrefix("feed_forward_proj:") == true)
    }

    @Test func activationNamesAreTransformersKeys() {
        let keys: Set = ["gelu", "gelu_10", "gelu_fast", "gelu_new", "gelu_python", "gelu_pytorch_tanh",
                         "gelu_python_tanh", "gelu_accurate", "hardswish", "laplace", "leaky_relu", "linear",
                         "mish", "quick_gelu", "relu", "relu2", "relu6", "sigmoid", "silu", "sqrtsoftplus",
                         "swish", "tanh"]  // ACT2CLS minus prelu and xielu (learnable)
        #expect(Set(Activation.allCases.map(\.rawValue)) == keys)
    }

    @Test func rejectsMalformedJSON() {
        for text in ["{", "", "{\"d_model\": 512,}", "[1]", "{\"a\": 01}", "\u{FEFF}{}"] {
            guard case .failure(.invalidConfig(let path, _)) = parse(text) else {
                Issue.record("accepted \(text.debugDescription)")
                continue
            }
            #expect(path == "/m/config.json")
        }
        let description = T5Error.invalidConfig(path: "/m/config.json", reason: "x").description
        #expect(description == "/m/config.json: invalid configuration: x")
    }

    @Test func rejectsWrongTypes() {
        let cases: [(String, String)] = [
            (#"{"d_model": "512"}"#, "d_model: expected an integer, found a string"),
            (#"{"d_model": 512.0}"#, "d_model: expected an integer, found a non-integer number"),
            (#"{"d_model": true}"#, "d_model: expected an integer, found a boolean"),
            (#"{"d_model": null}"#, "d_model: expected an integer, found null"),
            (#"{"num_decoder_layers": "6"}"#, "num_decoder_layers: expected an integer or null, found a string"),
            (#"{"layer_norm_epsilon": "1e-6"}"#, "layer_norm_epsilon: expected a number, found a string"),
            (#"{"dropout_rate": null}"#, "dropout_rate: expected a number, found null"),
            (#"{"feed_forward_proj": 5}"#, "feed_forward_proj: expected a string, found an integer"),
            (#"{"tie_word_embeddings": "yes"}"#, "tie_word_embeddings: expected true or false, found a string"),
            (#"{"scale_decoder_outputs": 1}"#, "scale_decoder_outputs: expected true or false, found an integer"),
            (#"{"eos_token_id": [1.0]}"#, "eos_token_id: expected a list of integers, found a non-integer number"),
            (#"{"eos_token_id": "1"}"#, "eos_token_id: expected an integer or a list of integers, found a string"),
            (#"{"eos_token_id": []}"#, "eos_token_id: empty list"),
        ]
        for (text, reason) in cases {
            #expect(invalidReason(text) == reason, "\(text)")
        }
    }

    @Test func rejectsUnusableValues() {
        #expect(invalidReason(#"{"d_model": 0}"#) == "d_model must be a positive integer, found 0")
        #expect(invalidReason(#"{"num_heads": -2}"#) == "num_heads must be a positive integer, found -2")
        #expect(invalidReason(#"{"num_decoder_layers": 0}"#) == "num_decoder_layers must be a positive integer, found 0")
        #expect(invalidReason(#"{"dropout_rate": 1.5}"#)?.hasPrefix("dropout_rate must be in [0, 1]") == true)
        #expect(invalidReason(#"{"layer_norm_epsilon": NaN}"#)?.hasPrefix("layer_norm_epsilon must be finite") == true)
        #expect(invalidReason(#"{"model_type": "longt5"}"#) == "model_type 'longt5' is not supported (this runtime computes t5, mt5, umt5)")
        #expect(invalidReason(#"{"model_type": "switch_transformers"}"#)?.hasPrefix("model_type 'switch_transformers' is not supported") == true)
        #expect(invalidReason(#"{"model_type": 5}"#) == "model_type: expected a string, found an integer")
        #expect(invalidReason(#"{"pad_token_id": -1}"#) == "pad_token_id -1 is outside the vocabulary 0..<32128")
        #expect(invalidReason(#"{"vocab_size": 100, "decoder_start_token_id": 100}"#) == "decoder_start_token_id 100 is outside the vocabulary 0..<100")
        #expect(invalidReason(#"{"eos_token_id": [1, 40000]}"#) == "eos_token_id 40000 is outside the vocabulary 0..<32128")
        #expect(invalidReason(#"{"pad_token_id": 9223372036854775807}"#) == "pad_token_id 9223372036854775807 is outside the vocabulary 0..<32128")
        #expect(invalidReason(#"{"d_kv": 4611686018427387904}"#)?.hasPrefix("num_heads × d_kv × d_model overflows") == true)
        #expect(invalidReason(#"{"num_heads": 4611686018427387904}"#)?.hasPrefix("num_heads × d_kv × d_model overflows") == true)
        #expect(invalidReason(#"{"vocab_size": 4611686018427387904}"#)?.hasPrefix("vocab_size × d_model overflows") == true)
    }

    @Test func lenientWhereHarmless() throws {
        let c = try parse(#"{"layer_norm_epsilon": 1, "dropout_rate": 0, "pad_token_id": null, "eos_token_id": null, "decoder_start_token_id": null, "unknown_key": {"x": [1]}}"#).get()
        #expect(c.layerNormEpsilon == 1 && c.dropoutRate == 0)
        #expect(c.padTokenID == 0 && c.eosTokenIDs == [1] && c.decoderStartTokenID == 0)
        #expect(try parse(#"{"decoder_start_token_id": 5, "eos_token_id": 7}"#).get().decoderStartTokenID == 5)
    }

    /// transformers 5.24 (probed with T5Config.from_pretrained on each JSON) rescales iff
    /// scale_decoder_outputs is truthy, defaulting to `tie_word_embeddings is not False`.
    @Test(arguments: [
        ("{}", true),
        (#"{"tie_word_embeddings": true}"#, true),
        (#"{"tie_word_embeddings": false}"#, false),
        (#"{"tie_word_embeddings": null}"#, true),
        (#"{"scale_decoder_outputs": true}"#, true),
        (#"{"scale_decoder_outputs": false}"#, false),
        (#"{"scale_decoder_outputs": null}"#, false),
        (#"{"tie_word_embeddings": true, "scale_decoder_outputs": true}"#, true),
        (#"{"tie_word_embeddings": true, "scale_decoder_outputs": false}"#, false),
        (#"{"tie_word_embeddings": false, "scale_decoder_outputs": true}"#, true),
        (#"{"tie_word_embeddings": false, "scale_decoder_outputs": false}"#, false),
    ])
    func rescaleRule(json: String, rescales: Bool) throws {
        #expect(try parse(json).get().rescalesDecoderOutput == rescales)
    }

    @Test func writesBackTransformersBytesUnchanged() throws {
        let saved = try parse(transformersSaved).get()
        #expect(String(decoding: saved.jsonData(), as: UTF8.self) == transformersSaved)
        let flan = try parse(flanStyle).get()
        #expect(try parse(String(decoding: flan.jsonData(), as: UTF8.self)).get() == flan)
    }

    @Test func writesUpdatesAndKeepsUnknownKeys() throws {
        let flan = try parse(flanStyle).get()
        let data = flan.jsonData(updating: ["dropout_rate": .number(0.0), "num_layers": .integer(2), "new_key": .string("é")])
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#""dropout_rate": 0.0,"#))
        #expect(text.contains(#""new_key": "\u00e9","#))
        #expect(text.contains(#""summarization": {"#))
        #expect(text.hasSuffix("}\n"))
        let special = String(decoding: flan.jsonData(updating: ["x": .number(-.infinity)]), as: UTF8.self)
        #expect(special.hasSuffix("\"x\": {\n    \"__float__\": \"-Infinity\"\n  }\n}\n"))
        let back = try parse(text).get()
        #expect(back.numLayers == 2 && back.numDecoderLayers == 8 && back.dropoutRate == 0)
    }

    @Test func codeBuiltConfigRoundTrips() throws {
        let c = T5Config(dModel: 32, dFF: 64, numLayers: 2, numDecoderLayers: 3, numHeads: 4, activation: .geluNew,
                         isGatedActivation: true, tieWordEmbeddings: false, eosTokenIDs: [1, 5])
        #expect(c.feedForwardProj == "gated-gelu")
        let back = try parse(String(decoding: c.jsonData(), as: UTF8.self)).get()
        #expect(back == c)
        #expect(!back.rescalesDecoderOutput)
        #expect(T5Config(activation: .silu, isGatedActivation: true).feedForwardProj == "gated-silu")
    }

    @Test func loadsFromDisk() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("t5-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("config.json")
        #expect(throws: T5Error.missingFile(path: url.path)) { try T5Config.load(from: url) }
        try AtomicFile.write(Data(transformersSaved.utf8), to: url)
        #expect(try T5Config.load(from: url).dModel == 64)
        #expect(throws: T5Error.self) { try T5Config.load(from: dir) }
        try Data("{\"d_model\": \"x\"}".utf8).write(to: url)
        #expect(throws: T5Error.invalidConfig(path: url.path, reason: "d_model: expected an integer, found a string")) {
            try T5Config.load(from: url)
        }
    }
}

@Suite struct ConfigJSONTests {
    @Test func pythonFloatRepr() {
        let cases: [(Double, String)] = [
            (1e-6, "1e-06"), (0.1, "0.1"), (1e16, "1e+16"), (1e-5, "1e-05"), (0.0001, "0.0001"),
            (123456789.123, "123456789.123"), (1.0, "1.0"), (1e22, "1e+22"), (2.5e-7, "2.5e-07"),
            (1e15, "1000000000000000.0"), (9999999999999998.0, "9999999999999998.0"), (-0.0, "-0.0"),
            (100.0, "100.0"), (1.7976931348623157e308, "1.7976931348623157e+308"), (-1.5e-300, "-1.5e-300"),
            (Double.leastNonzeroMagnitude, "5e-324"), (0.5, "0.5"), (12.0, "12.0"), (1.25e16, "1.25e+16"),
        ]
        for (value, text) in cases {
            #expect(JSONWriter.pythonRepr(value) == text, "\(value)")
        }
    }

    @Test func parserKeepsOrderAndLastDuplicate() throws {
        guard case .object(let o) = try JSONParser.parse(Data(#"{"b": 1, "a": [true, null, -0, 2.5e0, "x\n\u00e9\ud83d\ude00"], "b": 3}"#.utf8)) else {
            Issue.record("not an object")
            return
        }
        #expect(o.keys == ["b", "a"])
        #expect(o["b"] == .integer(3))
        #expect(o["a"] == .array([.bool(true), .null, .number(-0.0), .number(2.5), .string("x\né😀")]))
    }
}
