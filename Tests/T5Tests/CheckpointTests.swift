import Foundation
import Testing
@testable import T5

@Suite struct CheckpointTests {
    /// Every tensor of a fixture checkpoint by key, as fp32 copies.
    func tensors(of name: String) throws -> (values: [String: Tensor], specs: [ParameterSpec], config: T5Config) {
        let model = try Fixtures.model(name)
        let specs = T5Parameters.specs(for: model.config, separateLMHead: model.hasSeparateLMHead)
        let archive = try SafeTensorsArchive(directory: Fixtures.modelDirectory(name))
        var values = [String: Tensor]()
        for spec in specs { values[spec.key] = try archive.tensor(spec.key).copy() }
        return (values, specs, model.config)
    }

    func logprobs(_ model: T5Model) throws -> [Float] {
        try model.score(input: "translate English to German: The house is small.", target: "Das Haus ist klein.").logprobs
    }

    @Test(arguments: ["t5-relu-tied", "t5v11-gated-gelu", "t5-gated-silu-bf16"])
    func writtenModelReloadsWithIdenticalLogits(name: String) throws {
        let (values, specs, config) = try tensors(of: name)
        let out = try scratchDirectory("ckpt-model")
        defer { try? FileManager.default.removeItem(at: out) }
        let source = Fixtures.modelDirectory(name)
        try Checkpoint.writeModel(values, specs: specs, files: try .copying(from: source, config: config), to: out)
        let reloaded = try T5Model(directory: out)
        #expect(try logprobs(reloaded) == (try logprobs(try Fixtures.model(name))))
        // config.json is written back unchanged; the tokenizer is copied byte for byte.
        #expect(try Data(contentsOf: out.appendingPathComponent("config.json")) == Data(contentsOf: source.appendingPathComponent("config.json")))
        #expect(try Data(contentsOf: out.appendingPathComponent("spiece.model")) == Data(contentsOf: source.appendingPathComponent("spiece.model")))
        // A tied head is not stored (save_pretrained drops tied duplicates); an untied one is.
        let archive = try SafeTensorsArchive(directory: out)
        #expect(archive.keys.contains("lm_head.weight") == reloaded.hasSeparateLMHead)
        #expect(archive.metadata["format"] == "pt")
        for spec in specs {
            #expect(try archive.tensor(spec.key).array == values[spec.key]?.array, "\(spec.key) not bit-identical")
        }
    }

    @Test func configUpdatesAndDerivedGenerationConfig() throws {
        let (values, specs, config) = try tensors(of: "t5-relu-tied")
        let out = try scratchDirectory("ckpt-config")
        defer { try? FileManager.default.removeItem(at: out) }
        var files = try Checkpoint.ModelFiles.copying(from: Fixtures.modelDirectory("t5-relu-tied"), config: config)
        files.configUpdates = ["dropout_rate": .number(0.0)]
        files.generationConfig = nil
        try Checkpoint.writeModel(values, specs: specs, files: files, to: out)
        let saved = try T5Config.load(from: out.appendingPathComponent("config.json"))
        #expect(saved.dropoutRate == 0)
        let generation = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("generation_config.json"))) as? [String: Any])
        #expect(generation["decoder_start_token_id"] as? Int == 0)
        #expect(generation["eos_token_id"] as? Int == 1)
        #expect(generation["pad_token_id"] as? Int == 0)
    }

    func state(step: Int, seed: UInt64 = 42) -> TrainingState {
        TrainingState(step: step, totalSteps: 100, seed: seed, position: DataPosition(pool: 2, batchInPool: 3, drawn: [10, 7]),
                      examplesSeen: 96, tokensSeen: 4000, elapsedSeconds: 12.5, bestEvalLoss: 1.25,
                      signature: ["batch_size": "8", "optimizer": "AdamW(...)"])
    }

    @Test func saveKeepsOnlyTheNewestCompleteCheckpoint() throws {
        let (values, specs, config) = try tensors(of: "t5-relu-tied")
        let out = try scratchDirectory("ckpt-save")
        defer { try? FileManager.default.removeItem(at: out) }
        let files = try Checkpoint.ModelFiles.copying(from: Fixtures.modelDirectory("t5-relu-tied"), config: config)
        let moments = ["shared.weight.exp_avg": Tensor(shape: [2], values: [1, 2])]
        // Leftovers of an interrupted save: a half-written checkpoint directory and a temporary file.
        let stale = out.appendingPathComponent(".checkpoint-3.tmp-99999")
        try FileManager.default.createDirectory(at: stale, withIntermediateDirectories: true)
        try Data("partial".utf8).write(to: out.appendingPathComponent(".model.safetensors.tmp-1-2"))
        // A checkpoint directory without its state file is incomplete and ignored.
        try FileManager.default.createDirectory(at: out.appendingPathComponent("checkpoint-9"), withIntermediateDirectories: true)
        #expect(Checkpoint.latest(in: out) == nil)

        try Checkpoint.save(values: values, specs: specs, files: files, optimizerState: moments, state: state(step: 5), in: out)
        if let shared = values["shared.weight"] { shared.pointer[0] += 1 }
        let second = try Checkpoint.save(values: values, specs: specs, files: files, optimizerState: moments, state: state(step: 10), in: out)
        #expect(second.lastPathComponent == "checkpoint-10")
        #expect(Checkpoint.checkpoints(in: out).map(\.step) == [10])
        let names = try FileManager.default.contentsOfDirectory(atPath: out.path)
        #expect(!names.contains { $0.hasPrefix(".") }, "leftovers: \(names)")
        // The top-level model is the newest checkpoint's.
        for file in Checkpoint.modelFiles {
            #expect(try Data(contentsOf: out.appendingPathComponent(file)) == Data(contentsOf: second.appendingPathComponent(file)), "\(file)")
        }
        let top = try SafeTensorsArchive(directory: out)
        #expect(try top.tensor("shared.weight").array == values["shared.weight"]?.array)
        #expect(top.metadata["step"] == "10")

        let (loaded, optimizer) = try Checkpoint.loadState(from: second)
        #expect(loaded == state(step: 10))
        #expect(optimizer["shared.weight.exp_avg"]?.array == [1, 2])
    }

    @Test func trainingStateRoundTrips() throws {
        let s = state(step: 3, seed: .max)
        #expect(try TrainingState.decode(s.jsonData(), path: "s") == s)
        #expect(throws: T5Error.self) { try TrainingState.decode(Data("{}".utf8), path: "s") }
        var future = s
        future.version = 99
        #expect(throws: T5Error.corruptCheckpoint(path: "s", reason: "training state version 99, this runtime reads 1")) {
            try TrainingState.decode(future.jsonData(), path: "s")
        }
    }

    @Test func runSignatureNamesTheFirstDifference() {
        let saved = ["batch_size": "8", "seed": "1", "optimizer": "AdamW"]
        #expect(RunSignature.firstDifference(saved: saved, current: saved) == nil)
        var current = saved
        current["seed"] = "2"
        current["batch_size"] = "16"
        #expect(RunSignature.firstDifference(saved: saved, current: current) == "batch_size was 8, now 16")
        #expect(RunSignature.fingerprint([TokenizedExample(inputIDs: [5, 1], targetIDs: [1])])
                != RunSignature.fingerprint([TokenizedExample(inputIDs: [1, 5], targetIDs: [1])]))
    }

    @Test func metricsLogDropsStepsPastTheResumePoint() throws {
        let dir = try scratchDirectory("metrics")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("metrics.jsonl")
        let lines = (1...6).map { "{\"type\":\"train\",\"step\":\($0)}" }.joined(separator: "\n") + "\n{\"type\":\"train\",\"st"
        try Data(lines.utf8).write(to: url)
        let log = try MetricsLog(url: url, keepingThrough: 4)
        log.append(JSONObject([("type", .string("eval")), ("step", .integer(5))]))
        let text = try String(contentsOf: url, encoding: .utf8)
        #expect(text == (1...4).map { "{\"type\":\"train\",\"step\":\($0)}\n" }.joined() + "{\"type\":\"eval\",\"step\":5}\n")
        // A new run starts an empty log.
        _ = try MetricsLog(url: url)
        #expect(try Data(contentsOf: url).isEmpty)
    }

    @Test func progressLine() {
        var bar = ProgressBar(width: 10)
        let r = StepReport(step: 25, totalSteps: 100, loss: 2.5, learningRate: 1e-3, gradientNorm: 1, examples: 8,
                           inputTokens: 600, targetTokens: 200, epoch: 0.5, seconds: 0.5, elapsed: 12.5)
        #expect(bar.update(r) == "step 25/100 [##--------] 25% loss 2.5000 lr 1.00e-03 1,600 tok/s ETA 38s")
        #expect(ProgressBar.duration(3725) == "1h02m")
        #expect(ProgressBar.duration(75) == "1m15s")
    }
}
