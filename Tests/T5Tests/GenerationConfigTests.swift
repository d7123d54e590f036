import Foundation
import Testing
@testable import T5

/// generation_config.json: its values are what `t5 generate` does with no flags, in transformers' precedence
/// (flag > file > transformers' default). The expected ids are transformers' `generate()` answers recorded by
/// tools/make_fixtures.py with the same settings passed as arguments, which is what a generation config
/// holding them makes `generate()` do.
@Suite struct GenerationConfigTests {
    let cli = CLITests()
    static let name = "t5v11-gated-gelu"

    func reference() throws -> ModelReference {
        try Fixtures.reference(ModelReference.self, "reference/\(Self.name).json")
    }

    /// A scratch copy of the fixture model with `settings` as its generation_config.json.
    func model(with settings: [String: Any]) throws -> URL {
        let dir = try cli.scratchModel(Self.name)
        var object: [String: Any] = ["decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0]
        object.merge(settings) { $1 }
        try JSONSerialization.data(withJSONObject: object).write(to: dir.appendingPathComponent("generation_config.json"))
        return dir
    }

    func firstOutputs(_ r: CLITests.Result) throws -> [[Int]] {
        let record = try #require(try cli.jsonLines(r.stdout).first)
        let outputs = try #require(record["outputs"] as? [[String: Any]])
        return outputs.compactMap { $0["ids"] as? [Int] }
    }

    @Test func beamSettingsFromTheFileAreTheDefaults() throws {
        for (i, c) in try reference().beam.enumerated() {
            var settings: [String: Any] = [
                "num_beams": c.num_beams, "length_penalty": c.length_penalty,
                "num_return_sequences": c.num_return_sequences,
            ]
            switch c.early_stopping.value {
            case .always: settings["early_stopping"] = true
            case .heuristic: settings["early_stopping"] = false
            case .never: settings["early_stopping"] = "never"
            }
            // max_length / min_length count the decoder start token; alternate the two spellings.
            if i % 2 == 0 {
                settings["max_new_tokens"] = c.max_new_tokens
                settings["min_new_tokens"] = c.min_new_tokens
            } else {
                settings["max_length"] = c.max_new_tokens + 1
                settings["min_length"] = c.min_new_tokens + 1
            }
            let dir = try model(with: settings)
            let r = try cli.run(["generate", "--model", dir.path, "--json", c.input])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try firstOutputs(r) == c.outputs.map(\.ids), "beam case \(i): \(settings)")
        }
    }

    @Test func greedySettingsFromTheFileAndFlagsOverThem() throws {
        let ref = try reference()
        for (i, c) in ref.greedy.enumerated() {
            let dir = try model(with: [
                "max_new_tokens": c.max_new_tokens, "min_new_tokens": c.min_new_tokens,
                "repetition_penalty": c.repetition_penalty, "no_repeat_ngram_size": c.no_repeat_ngram_size,
            ])
            let r = try cli.run(["generate", "--model", dir.path, "--json", c.input])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try firstOutputs(r) == [c.ids], "greedy case \(i)")
        }
        // The file asks for 3 beams and 2 tokens; the flags ask for greedy search of the case's length.
        let c = ref.greedy[0]
        let dir = try model(with: ["num_beams": 3, "max_new_tokens": 2, "repetition_penalty": 1.7])
        let r = try cli.run(["generate", "--model", dir.path, "--json", "--beams", "1", "--max-new-tokens", "\(c.max_new_tokens)",
                             "--repetition-penalty", "\(c.repetition_penalty)", "--no-repeat-ngram-size", "\(c.no_repeat_ngram_size)",
                             "--min-new-tokens", "\(c.min_new_tokens)", c.input])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try firstOutputs(r) == [c.ids])
    }

    @Test func everyEosIdEndsASequence() throws {
        // transformers stops a sequence at any id of an eos_token_id list, keeping that id.
        let c = try #require(try reference().greedy.first { $0.min_new_tokens == 0 && $0.ids.count > 6 })
        let stop = try #require(c.ids.indices.dropFirst(2).first { !c.ids[..<$0].contains(c.ids[$0]) && c.ids[$0] != 1 })
        let dir = try model(with: ["eos_token_id": [1, c.ids[stop]], "max_new_tokens": c.max_new_tokens,
                                   "repetition_penalty": c.repetition_penalty, "no_repeat_ngram_size": c.no_repeat_ngram_size])
        let r = try cli.run(["generate", "--model", dir.path, "--json", c.input])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try firstOutputs(r) == [Array(c.ids[...stop])])
        // The library reads the same defaults.
        let model = try T5Model(directory: dir)
        #expect(model.eosTokenIDs == [1, c.ids[stop]])
        #expect(GenerationOptions(for: model).maxNewTokens == c.max_new_tokens)
    }

    @Test func unimplementedSettingsAreNamedNotIgnoredSilently() throws {
        let dir = try model(with: ["bad_words_ids": [[5, 6]], "forced_bos_token_id": 7, "typical_p": 1.0, "max_new_tokens": 3])
        let r = try cli.run(["generate", "--model", dir.path, "hello"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr == "t5: warning: generation_config.json sets bad_words_ids, forced_bos_token_id, which this runtime does not implement; ignored\n")
        let info = try cli.run(["info", "--model", dir.path])
        #expect(info.stdout.contains("generation_config.json sets decoder_start_token_id, eos_token_id, pad_token_id, max_new_tokens;"), "\(info.stdout)")
        #expect(info.stdout.contains("generation:   max_new_tokens 3, num_beams 1"), "\(info.stdout)")
        #expect(info.stdout.contains("not implemented, ignored: bad_words_ids, forced_bos_token_id"), "\(info.stdout)")
    }

    @Test func badValuesAreRefusedNamingTheFile() throws {
        for (settings, fragment) in [
            (["num_beams": 0] as [String: Any], "generation_config.json: invalid configuration: num_beams must be at least 1, found 0"),
            (["eos_token_id": [1, 4000]], "generation_config.json: invalid configuration: eos_token_id 4000 is outside the vocabulary"),
            (["decoder_start_token_id": -3], "decoder_start_token_id -3 is outside the vocabulary"),
            (["early_stopping": 3], "early_stopping: expected true, false or \"never\""),
            (["top_p": 1.5], "--top-p"),
            (["num_beams": 2, "num_return_sequences": 3], "--num-return-sequences"),
        ] {
            let dir = try model(with: settings)
            try cli.expectFailure(["generate", "--model", dir.path, "hello"], fragment)
        }
        let dir = try model(with: [:])
        try Data("{\"num_beams\": ".utf8).write(to: dir.appendingPathComponent("generation_config.json"))
        try cli.expectFailure(["generate", "--model", dir.path, "hello"], "generation_config.json: invalid configuration: malformed JSON")
    }

    /// transformers' `generate()` called with no arguments on a checkpoint whose generation_config.json
    /// holds the settings (tools/make_generation_config_fixtures.py): `t5 generate` with no flags, and the
    /// library's `GenerationOptions(for:)`, give the same ids.
    @Test func noFlagsGiveWhatGenerateWithNoArgumentsGives() throws {
        let url = Fixtures.root.appendingPathComponent("reference/generation-config.json")
        let ref = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let name = try #require(ref["model"] as? String)
        let cases = try #require(ref["cases"] as? [[String: Any]])
        #expect(cases.count >= 20)
        var directories: [Data: URL] = [:]
        defer { for dir in directories.values { try? FileManager.default.removeItem(at: dir) } }
        for c in cases {
            let settings = try JSONSerialization.data(withJSONObject: try #require(c["generation_config"]), options: .sortedKeys)
            let input = try #require(c["input"] as? String)
            let expected = try #require(c["outputs"] as? [[Int]])
            let dir: URL
            if let known = directories[settings] {
                dir = known
            } else {
                dir = try cli.scratchModel(name)
                try settings.write(to: dir.appendingPathComponent("generation_config.json"))
                directories[settings] = dir
            }
            let label = String(decoding: settings, as: UTF8.self)
            let r = try cli.run(["generate", "--model", dir.path, "--json", input])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try firstOutputs(r) == expected, "\(label) \(input)")
            let model = try T5Model(directory: dir)
            let library = try model.generate(input, options: GenerationOptions(for: model))
            #expect(library.map(\.ids) == expected, "library: \(label) \(input)")
        }
    }
}
