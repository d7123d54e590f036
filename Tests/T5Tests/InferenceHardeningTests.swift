import Foundation
import Testing
@testable import T5

/// Hostile inputs to inference, through the real `t5` binary and the library: non-finite weights and
/// activations, ids and sizes in config.json that would index or allocate past what exists, requests larger
/// than memory, and a stream whose consumer leaves. Each must end in one clear error (or a correct answer),
/// never an empty line, a vanished JSON record, a trap or an abort.
@Suite struct InferenceHardeningTests {
    let cli = CLITests()

    /// Overwrites elements of `key` in a safetensors file with `bits` (little-endian, the tensor's width).
    static func patch(_ file: URL, key: String, elements: Range<Int>? = nil, bits: UInt32) throws {
        var data = try Data(contentsOf: file)
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try #require(JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        let entry = try #require(header[key] as? [String: Any], "no tensor \(key) in \(file.lastPathComponent)")
        let offsets = try #require(entry["data_offsets"] as? [Int])
        let width = (entry["dtype"] as? String) == "F32" ? 4 : 2
        let start = 8 + headerLength + offsets[0], count = (offsets[1] - offsets[0]) / width
        for i in elements ?? 0..<count {
            for b in 0..<width { data[start + i * width + b] = UInt8(truncatingIfNeeded: bits >> (8 * b)) }
        }
        try data.write(to: file)
    }

    func scratch(_ name: String = "t5-relu-tied") throws -> URL { try cli.scratchModel(name) }

    func editConfig(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("config.json")
        var config = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: url)
    }

    /// The 1 MB model of README's "Example: three tasks from scratch" (bundled until the translating model
    /// replaced it): small, fast, and with answers known by construction ("reverse: 3 1 4" → "4 1 3").
    static var digits: String { Fixtures.root.appendingPathComponent("digits-t5").path }

    // MARK: non-finite weights

    @Test func aNaNWeightIsRefusedAtLoadNamingTheTensor() throws {
        let dir = try scratch()
        let key = "decoder.block.1.layer.2.DenseReluDense.wo.weight"
        try Self.patch(dir.appendingPathComponent("model.safetensors"), key: key, elements: 7..<8, bits: 0x7FC0_0000)
        let m = ["--model", dir.path]
        for args in [["generate"] + m + ["hello"], ["generate"] + m + ["--json", "hello"], ["generate"] + m + ["--beams", "2", "hello"],
                     ["generate"] + m + ["--weights", "int8", "hello"], ["generate"] + m + ["--weights", "bf16", "--sample", "hello"],
                     ["score"] + m + ["--json", "--input", "a", "--target", "b"]] {
            try cli.expectFailure(args, "non-finite value (NaN or infinity) in tensor \(key)")
        }
    }

    @Test func infinitiesInHalfPrecisionCheckpointsAreFound() throws {
        // BF16 (sharded) and F16 storage are scanned in their own encodings.
        let bf16 = try scratch("t5-gated-silu-bf16")
        let index = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: bf16.appendingPathComponent("model.safetensors.index.json"))) as? [String: Any])
        let key = "encoder.block.0.layer.1.DenseReluDense.wi_1.weight"
        let shard = try #require((index["weight_map"] as? [String: String])?[key])
        try Self.patch(bf16.appendingPathComponent(shard), key: key, elements: 3..<4, bits: 0xFF80)  // -inf
        try cli.expectFailure(["generate", "--model", bf16.path, "hello"], "tensor \(key)")
        let f16 = try scratch("t5-gelu-f16-legacy")
        try Self.patch(f16.appendingPathComponent("model.safetensors"), key: "encoder.block.1.layer.1.DenseReluDense.wo.weight", elements: 100..<101, bits: 0x7C00)  // +inf
        try cli.expectFailure(["score", "--model", f16.path, "--input", "a", "--target", "b"], "tensor encoder.block.1.layer.1.DenseReluDense.wo.weight")
    }

    @Test func theFiniteScanFindsEveryPositionAndEncoding() {
        // Every position of vector blocks and tails, for each encoding; finite extremes stay accepted.
        for count in [1, 15, 16, 17, 1023, 1024, 1025, 2048 + 33] {
            for bad in Set([0, count / 2, count - 1]) {
                var f32 = (0..<count).map { Float($0 % 7) - 3 }
                f32[0] = .greatestFiniteMagnitude
                #expect(f32.withUnsafeBytes { FiniteCheck.storedIsFinite($0.baseAddress!, count: count, encoding: .f32) })
                f32[bad] = .nan
                #expect(!f32.withUnsafeBytes { FiniteCheck.storedIsFinite($0.baseAddress!, count: count, encoding: .f32) }, "f32 NaN at \(bad)/\(count)")
                f32[bad] = -.infinity
                #expect(!f32.withUnsafeBytes { FiniteCheck.storedIsFinite($0.baseAddress!, count: count, encoding: .f32) }, "f32 -inf at \(bad)/\(count)")
                for (encoding, largest, infinity) in [(FiniteCheck.Encoding.bf16, UInt16(0x7F7F), UInt16(0x7F80)), (.f16, 0x7BFF, 0x7C00)] {
                    var half = [UInt16](repeating: 0x3F80, count: count)
                    half[bad] = largest | 0x8000
                    #expect(half.withUnsafeBytes { FiniteCheck.storedIsFinite($0.baseAddress!, count: count, encoding: encoding) })
                    half[bad] = infinity
                    #expect(!half.withUnsafeBytes { FiniteCheck.storedIsFinite($0.baseAddress!, count: count, encoding: encoding) }, "\(encoding) inf at \(bad)/\(count)")
                    half[bad] = infinity | 0x8001  // a negative NaN
                    #expect(!half.withUnsafeBytes { FiniteCheck.storedIsFinite($0.baseAddress!, count: count, encoding: encoding) }, "\(encoding) NaN at \(bad)/\(count)")
                }
            }
        }
    }

    // MARK: non-finite activations from finite weights

    @Test func overflowingActivationsEndInAnErrorOnEveryPath() throws {
        // Finite weights whose products overflow: the final norm scales every decoder state to ~3e38, so the LM
        // head's sums hit ±inf and NaN. Each decoding path must stop at the first such step.
        let dir = try scratch()
        try Self.patch(dir.appendingPathComponent("model.safetensors"), key: "decoder.final_layer_norm.weight", bits: 0x7F7F_0000)
        let m = ["--model", dir.path]
        for args in [["generate"] + m + ["hello"], ["generate"] + m + ["--json", "hello", "world"],
                     ["generate"] + m + ["--beams", "3", "--json", "hello"], ["generate"] + m + ["--sample", "--json", "hello"]] {
            try cli.expectFailure(args, "non-finite value (NaN or infinity) in the logits of decoding step 1")
        }
        try cli.expectFailure(["score"] + m + ["--json", "--input", "a", "--target", "b"], "in the logits of target position 1")
    }

    @Test func aTinyTemperatureSamplesTheArgmaxInsteadOfNaN() throws {
        // T → 0 makes sampling greedy; transformers' scores / T would overflow to inf and NaN at T = 1e-45.
        let m = ["--model", Self.digits, "--json", "reverse: 3 1 4 1 5"]
        let greedy = try cli.run(["generate"] + m)
        #expect(greedy.status == 0, "\(greedy.stderr)")
        for temperature in ["1e-45", "1e-30"] {
            let sampled = try cli.run(["generate", "--sample", "--temperature", temperature] + m)
            #expect(sampled.status == 0, "\(sampled.stderr)")
            let text = try cli.jsonLines(sampled.stdout).first.flatMap { ($0["outputs"] as? [[String: Any]])?.first?["text"] as? String }
            #expect(text == "5 1 4 1 3", "temperature \(temperature): \(sampled.stdout)")
        }
    }

    // MARK: config.json that would index or allocate past what exists

    @Test func idsAtOrPastTheVocabularyAreRefusedAtLoad() throws {
        for (key, value) in [("decoder_start_token_id", 512), ("pad_token_id", 1 << 40), ("eos_token_id", 600)] {
            let dir = try scratch()
            try editConfig(dir) { $0[key] = value }
            try cli.expectFailure(["generate", "--model", dir.path, "hello"], "\(key) \(value) is outside the vocabulary 0..<512")
        }
    }

    @Test func theVariantComesFromModelTypeAndIsCheckedAgainstTheTensors() throws {
        // A UMT5 checkpoint whose config says T5 has per-block biases the T5 table does not name: refused, never
        // run with block 0's bias everywhere. mt5 is T5's computation.
        let umt5 = try scratch("umt5-tiny")
        try editConfig(umt5) { $0["model_type"] = "t5" }
        let asT5 = try cli.run(["generate", "--model", umt5.path, "hello"])
        #expect(asT5.status == 1)
        #expect(asT5.stderr.contains("relative_attention_bias") && asT5.stderr.contains("model_type"), "\(asT5.stderr)")
        let t5 = try scratch()
        try editConfig(t5) { $0["model_type"] = "umt5" }
        try cli.expectFailure(["generate", "--model", t5.path, "hello"], "missing tensors encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight")
        try editConfig(t5) { $0["model_type"] = "mt5" }
        #expect(try cli.run(["generate", "--model", t5.path, "--max-new-tokens", "3", "hello"]).status == 0)
        try editConfig(t5) { $0["model_type"] = "longt5" }
        try cli.expectFailure(["generate", "--model", t5.path, "hello"], "model_type 'longt5' is not supported")
    }

    @Test func anEmbeddingAliasThatDiffersFromSharedIsRefused() throws {
        let dir = try scratch("t5-gelu-f16-legacy")
        try Self.patch(dir.appendingPathComponent("model.safetensors"), key: "decoder.embed_tokens.weight", elements: 5..<6, bits: 0x4B00)
        try cli.expectFailure(["generate", "--model", dir.path, "hello"], "decoder.embed_tokens.weight differs from shared.weight")
    }

    @Test func absurdSizesAreRefusedBeforeAnythingIsSized() throws {
        let huge = 1 << 62
        for (key, value, fragment) in [
            ("d_kv", huge, "num_heads × d_kv × d_model overflows"), ("num_heads", huge, "num_heads × d_kv × d_model overflows"),
            ("num_layers", 1 << 31, "num_layers is 2147483648 but the checkpoint has 2 encoder blocks"),
            ("num_decoder_layers", 1 << 31, "num_decoder_layers is 2147483648 but the checkpoint has 2 decoder blocks"),
            ("d_ff", huge, "d_ff × d_model overflows"),
        ] {
            let dir = try scratch()
            try editConfig(dir) { $0[key] = value }
            try cli.expectFailure(["generate", "--model", dir.path, "hello"], fragment)
        }
    }

    @Test func aHugeMaxDistanceExpandsOnlyWhatCanBeUsed() throws {
        // relative_attention_max_distance 2^31 is a valid config (other buckets, not an error); its bias table is
        // expanded to 65,536 positions, not 2^32 per head.
        let dir = try scratch()
        try editConfig(dir) { $0["relative_attention_max_distance"] = 1 << 31 }
        let r = try cli.run(["generate", "--model", dir.path, "--max-new-tokens", "4", "hello"])
        #expect(r.status == 0, "\(r.stderr)")
        let model = try T5Model(directory: dir)
        #expect(model.encoderSupportedLength == RelativePositionBias.expansionLimit + 1)
        #expect(model.decoderBiases[0].values.count == 4 * (2 * RelativePositionBias.expansionLimit + 1))
        // Within the expansion every distance has transformers' bucket.
        for d in [-65_536, -1000, -17, 0, 17, 1000, 65_536] {
            let b = RelativePositionBias.bucket(relativePosition: d, bidirectional: true, numBuckets: 32, maxDistance: 1 << 31)
            #expect(model.encoderBiases[1].center(0)[d] == model.weights.encoderBlocks[0].relativeBias?.pointer[b * 4])
        }
    }

    @Test func aFromScratchModelTooLargeForMemoryIsRefused() throws {
        // --from-scratch sizes weights from the config alone: 2^31 layers cannot be allocated.
        let config = T5Config(numLayers: 1 << 31)
        let tokenizer = try T5Tokenizer(modelFile: Fixtures.root.appendingPathComponent("spm/spiece.model"))
        #expect(throws: T5Error.self) { try T5Model.randomlyInitialized(config: config, tokenizer: tokenizer, seed: 1) }
        do {
            _ = try T5Model.randomlyInitialized(config: config, tokenizer: tokenizer, seed: 1)
        } catch {
            guard case .tooLarge = error else { Issue.record("expected .tooLarge, got \(error)"); return }
        }
    }

    // MARK: requests larger than memory

    @Test func requestsLargerThanMemoryAreRefusedSayingHowMuch() throws {
        let long = String(repeating: "7 ", count: 100_000)
        // (After the warning that the input is longer than T5's 512 training tokens.)
        let r = try cli.run(["generate", "--model", Self.digits], stdin: long + "\n")
        #expect(r.status == 1)
        #expect(r.stderr.split(separator: "\n").last?.contains("encoding 1 input of up to 100001 tokens needs ") == true, "\(r.stderr)")
        try cli.expectFailure(["generate", "--model", Self.digits, "--sample", "--num-return-sequences", "10000000", "reverse: 1 2"], "of memory available")
        try cli.expectFailure(["generate", "--model", Self.digits, "--beams", "100000000", "reverse: 1 2"], "of memory available")
        // A request that fits under the machine's memory is refused under a lower limit (T5_MEMORY_LIMIT).
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = ["generate", "--model", Self.digits, "--beams", "4", "reverse: 1 2"]
        process.environment = ProcessInfo.processInfo.environment.merging(["T5_MEMORY_LIMIT": "64K"]) { $1 }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(message.contains("more than the 64.0 KiB of memory available"), "\(message)")
    }

    @Test func memoryFollowsTheTokensGeneratedNotMaxNewTokens() throws {
        // Greedy and beam stop at eos; the cache grows as they go, so no limit is sized up front.
        for extra in [[], ["--beams", "3"]] {
            for limit in ["1000000000", "\(Int.max)"] {
                let r = try cli.run(["generate", "--model", Self.digits, "--max-new-tokens", limit] + extra + ["reverse: 3 1 4 1 5"])
                #expect(r.status == 0, "\(r.stderr)")
                #expect(r.stdout == "5 1 4 1 3\n", "\(extra) \(limit): \(r.stdout)")
            }
        }
    }

    @Test func aGrowingCacheComputesWhatOneLargeAllocationDoes() throws {
        // Two rows decoded for 300 steps, with beam-style reorders on the way: a cache that starts at one
        // position and doubles (9 growths) gives bit-identical logits to one sized for all 300 up front.
        let model = try T5Model(directory: URL(fileURLWithPath: Self.digits))
        let encoded = try model.encode([model.tokenizer.encode("reverse: 3 1 4")])
        let growing = try DecoderState(model: model, encoded: encoded, rowInput: [0, 0], capacity: 1)
        let preallocated = try DecoderState(model: model, encoded: encoded, rowInput: [0, 0], capacity: 300)
        let v = model.config.vocabSize
        var tokens = [0, 0]
        for step in 0..<300 {
            try growing.forward(tokens: tokens)
            try preallocated.forward(tokens: tokens)
            let a = Array(UnsafeBufferPointer(start: growing.logits.pointer, count: 2 * v))
            let b = Array(UnsafeBufferPointer(start: preallocated.logits.pointer, count: 2 * v))
            #expect(a == b, "step \(step)")
            if a != b { return }
            tokens = [(step * 7 + 3) % v, (step * 11 + 5) % v]
            if step % 5 == 4 {
                try growing.reorder([1, 0])
                try preallocated.reorder([1, 0])
            }
        }
        #expect(growing.capacity >= 300 && growing.capacity < 600)
    }

    // MARK: cancellation

    @Test func aStreamStopsWhenItsConsumerLeaves() async throws {
        let model = try T5Model(directory: URL(fileURLWithPath: Self.digits))
        var o = GenerationOptions()
        o.maxNewTokens = 20_000
        o.minNewTokens = 20_000  // eos banned: the stream would run 20,000 steps (tens of seconds)
        // The consumer breaks out of its loop and its stream is released, as `for try await t in model.stream(...)`
        // releases it: an AsyncThrowingStream terminates when released or when the consuming task is cancelled.
        func consumeThree() async throws -> Task<Int, Never> {
            let (stream, task) = model.streamAndTask("reverse: 3 1 4", options: o)
            var seen = 0
            for try await _ in stream {
                seen += 1
                if seen == 3 { break }
            }
            return task
        }
        let task = try await consumeThree()
        let generated = await task.value
        // The stream is pulled: the decoder computes a token only when asked, so it stops at exactly the three
        // tokens consumed, however busy the machine (an eager producer raced the consumer and could finish).
        #expect(generated == 3, "the decode loop went on after the consumer left: \(generated) tokens")
    }

    @Test func aCancelledGenerationThrowsCancelled() async throws {
        let model = try T5Model(directory: URL(fileURLWithPath: Self.digits))
        var o = GenerationOptions()
        o.maxNewTokens = 3000
        o.minNewTokens = 3000
        for beams in [1, 2] {
            o.numBeams = beams
            let options = o
            let task = Task { try model.generate(ids: [[5, 6, 1]], options: options) }
            task.cancel()
            await #expect(throws: T5Error.cancelled) { _ = try await task.value }
        }
    }
}
