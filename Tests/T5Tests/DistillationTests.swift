import Foundation
import Synchronization
import Testing
@testable import T5

/// Word-level distillation and shrink-and-fine-tune students against PyTorch (Tests/Fixtures/distill, from
/// tools/make_distill_fixtures.py): a 3+3-block teacher, a 2+1-block student copied from it.
@Suite struct DistillationTests {
    static let variants = ["t5-relu-tied", "t5v11-gated-gelu"]
    static let cases = ["default", "kl_only", "ce_only", "hidden"]

    struct Reference: Decodable {
        struct Batch: Decodable {
            let input_ids: [[Int]]
            let target_ids: [[Int]]
        }
        struct Layers: Decodable {
            let encoder: [Int]
            let decoder: [Int]
        }
        struct Case: Decodable {
            let alpha: Float
            let temperature: Float
            let hidden_weight: Float
            let loss: Float
            let grads: String
        }
        struct Optimizer: Decodable {
            let `case`: String
            let steps: Int
            let losses_before_each_step: [Float]
            let file: String
        }
        let student_layers: Layers
        let batch: Batch
        let tokens: Int
        let cases: [String: Case]
        let optimizers: [String: Optimizer]
    }

    static func directory(_ variant: String) -> URL {
        Fixtures.root.appendingPathComponent("distill").appendingPathComponent(variant)
    }

    static func reference(_ variant: String) throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: directory(variant).appendingPathComponent("reference.json")))
    }

    /// The teacher or student directory (no tokenizer: the batch is raw ids; the inference fixtures' one stands in).
    static func model(_ variant: String, _ role: String, packWeights: Bool = true) throws -> T5Model {
        let dir = directory(variant).appendingPathComponent(role)
        let config = try T5Config.load(from: dir.appendingPathComponent("config.json"))
        let tokenizer = try T5Tokenizer(modelFile: Fixtures.root.appendingPathComponent("spm/spiece.model"))
        return try T5Model(config: config, archive: try SafeTensorsArchive(directory: dir), tokenizer: tokenizer, path: dir.path, packWeights: packWeights)
    }

    static func tensors(_ url: URL) throws -> [String: [Float]] {
        let archive = try SafeTensorsArchive(file: url)
        var out = [String: [Float]]()
        for key in archive.keys { out[key] = try archive.tensor(key).array }
        return out
    }

    static func batch(_ r: Reference) -> TrainingBatch {
        TrainingBatch(inputIDs: r.batch.input_ids, targetIDs: r.batch.target_ids)
    }

    /// The case's objective; the hidden states are compared at the layers the student was copied from.
    static func objective(_ teacher: T5Model, _ c: Reference.Case, _ r: Reference) throws -> DistillationObjective {
        try DistillationObjective(
            teacher: teacher, alpha: c.alpha, temperature: c.temperature, hiddenWeight: c.hidden_weight,
            hiddenLayers: StudentLayers(encoder: r.student_layers.encoder, decoder: r.student_layers.decoder))
    }

    @Test(arguments: variants, cases) func lossAndGradientsMatchPyTorch(variant: String, name: String) throws {
        let reference = try Self.reference(variant)
        let c = try #require(reference.cases[name])
        let teacher = try Self.model(variant, "teacher")
        let store = ParameterStore(model: try Self.model(variant, "student"))
        let objective = try Self.objective(teacher, c, reference)
        let batch = Self.batch(reference)
        var generator = SeededGenerator(seed: 1)
        let result = store.accumulateGradients(batch, objective: try objective.bound(to: batch), dropoutRate: 0, generator: &generator)
        #expect(result.tokens == reference.tokens)
        #expect(abs(result.loss - c.loss) <= 1e-5 * abs(c.loss), "\(variant) \(name): loss \(result.loss) vs PyTorch \(c.loss)")
        let expected = try Self.tensors(Self.directory(variant).appendingPathComponent(c.grads))
        #expect(Set(expected.keys) == Set(store.specs.map(\.key)))
        var worst = (key: "", error: 0.0)
        for spec in store.specs {
            let error = relativeL2(try #require(store.gradients[spec.key]).array, try #require(expected[spec.key]))
            #expect(error <= 1e-4, "\(variant) \(name) \(spec.key): gradient relative L2 error \(error)")
            if error > worst.error { worst = (spec.key, error) }
        }
        print("distill \(variant) \(name): loss \(result.loss) vs \(c.loss); max gradient relative L2 \(worst.error) (\(worst.key))")
    }

    @Test(arguments: variants) func threeStepUpdatesMatchPyTorch(variant: String) throws {
        try ParallelSettings.scoped {
            let reference = try Self.reference(variant)
            let batch = Self.batch(reference)
            let examples = zip(batch.inputIDs, batch.targetIDs).map { TokenizedExample(inputIDs: $0, targetIDs: $1) }
            let data = try TrainingData(tasks: [TaskData(source: TaskSource(path: "fixture"), examples: examples)])
            let teacher = try Self.model(variant, "teacher")
            let adamW = OptimizerChoice.adamW(.init(learningRate: 1e-3, weightDecay: 0.01))
            let adafactor = OptimizerChoice.adafactor(.fixed(learningRate: 1e-3))
            for (name, optimizer) in [("adamw", adamW), ("adafactor", adafactor), ("adamw_hidden", adamW), ("adafactor_hidden", adafactor)] {
                let run = try #require(reference.optimizers[name])
                let c = try #require(reference.cases[run.case])
                var options = TrainingOptions()
                options.optimizer = optimizer
                options.batchSize = examples.count
                options.length = .steps(run.steps)
                options.maxGradNorm = 0
                options.dropout = 0
                let trainer = try Trainer(
                    model: try Self.model(variant, "student"), training: data, options: options,
                    objective: try Self.objective(teacher, c, reference))
                let initial = trainer.store.values.mapValues(\.array)
                for k in 0..<run.steps {
                    let report = try trainer.step()
                    let want = Double(run.losses_before_each_step[k])
                    #expect(abs(report.loss - want) <= 1e-4 * want, "\(variant) \(name) step \(k + 1): loss \(report.loss) vs \(want)")
                }
                let expected = try Self.tensors(Self.directory(variant).appendingPathComponent(run.file))
                let worst = try worstUpdateDistance(
                    trainer.store, initial: initial, expected: expected, tolerance: 1e-3, label: "\(variant) \(name) 3-step")
                print("distill 3-step parity \(variant) \(name): max relative L2 of an update \(String(format: "%.2e", worst.distance)) (\(worst.key))")
            }
        }
    }

    /// The student T5Model.student(copying:) makes equals the one make_student.py's recipe made in PyTorch,
    /// bit for bit, block-0 relative bias included (the student's decoder block 0 copies teacher block 1).
    @Test(arguments: variants) func copiedStudentEqualsPyTorchsBitForBit(variant: String) throws {
        let reference = try Self.reference(variant)
        let teacher = try Self.model(variant, "teacher", packWeights: false)
        let layers = StudentLayers(encoder: reference.student_layers.encoder, decoder: reference.student_layers.decoder)
        let student = try teacher.student(copying: layers)
        #expect(student.config.numLayers == layers.encoder.count && student.config.numDecoderLayers == layers.decoder.count)
        let expected = try Self.tensors(Self.directory(variant).appendingPathComponent("student/model.safetensors"))
        let ours = ParameterStore(model: student).values
        #expect(Set(ours.keys).isSubset(of: Set(expected.keys)))
        for (key, value) in ours {
            let want = try #require(expected[key], "\(key) not in the PyTorch student")
            #expect(value.array.map(\.bitPattern) == want.map(\.bitPattern), "\(variant) \(key) differs from PyTorch's copy")
        }
        // Its config names what it copied, as make_student.py's init_metadata does.
        let json = String(decoding: student.config.jsonData(), as: UTF8.self)
        #expect(json.contains("\"copied_decoder_layers\": [\n      1\n    ]"), "\(json)")
    }

    @Test func layersToCopyIsMakeStudentsTable() {
        #expect(StudentLayers.picked(student: 3, teacher: 12).layers == [0, 6, 11])
        #expect(StudentLayers.picked(student: 6, teacher: 12).layers == [0, 2, 4, 7, 9, 11])
        #expect(StudentLayers.picked(student: 4, teacher: 16).layers == [0, 5, 10, 15])
        #expect(StudentLayers.picked(student: 3, teacher: 6) == ([0, 2, 5], true))
        // Not in the table: the first N, as pick_layers_to_copy does after its warning.
        #expect(StudentLayers.picked(student: 2, teacher: 3) == ([0, 1], false))
    }

    @Test func badLayersAndSettingsAreRefused() throws {
        let teacher = try Self.model("t5-relu-tied", "teacher", packWeights: false)
        func reason(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return "\(error)" }
        }
        #expect(reason { _ = try teacher.student(copying: StudentLayers(encoder: [0, 3], decoder: [0])) }.contains("encoder layer 3 is out of range: the teacher's encoder has layers 0-2"))
        #expect(reason { _ = try teacher.student(copying: StudentLayers(encoder: [0], decoder: [1, 1])) }.contains("decoder layer 1 is given twice"))
        #expect(reason { _ = try teacher.student(copying: StudentLayers(encoder: [], decoder: [1])) }.contains("encoder: no layers"))
        #expect(reason { _ = try DistillationObjective(teacher: teacher, alpha: 1.5) }.contains("DistillationObjective.alpha: must be in [0, 1], got 1.5"))
        #expect(reason { _ = try DistillationObjective(teacher: teacher, temperature: 0) }.contains("DistillationObjective.temperature"))
    }

    /// `Distiller.run` trains as a `Trainer` with the same `DistillationObjective` does, and refuses a student
    /// with another vocabulary before writing anything.
    @Test func oneCallDistillsAsTheTrainerDoes() async throws {
        let dir = try scratchDirectory("distiller-one-call")
        defer { try? FileManager.default.removeItem(at: dir) }
        let teacherDirectory = Fixtures.modelDirectory("t5v11-gated-gelu")
        var options = TrainingOptions()
        options.batchSize = 4
        options.length = .steps(2)
        options.dropout = 0
        let examples = FinetuningTests.examples
        let steps = Mutex<[Int]>([])
        let distilled = try await Distiller.run(
            teacher: .init(directory: teacherDirectory, alpha: 0.5, temperature: 3), student: teacherDirectory,
            train: [.examples("reverse", examples)], options: options, output: dir.appendingPathComponent("out")
        ) { event in
            if case .step(let report) = event { steps.withLock { $0.append(report.step) } }
        }
        #expect(steps.withLock { $0 } == [1, 2])
        let teacher = try T5Model(directory: teacherDirectory)
        let student = try T5Model(directory: teacherDirectory, packWeights: false)
        let trainer = try Trainer(
            model: student, training: try TrainingData(tasks: [TaskData(name: "reverse", examples: examples, tokenizer: student.tokenizer)]),
            options: options, objective: try DistillationObjective(teacher: teacher, alpha: 0.5, temperature: 3))
        for _ in 0..<2 { _ = try trainer.step() }
        let a = try distilled.score(input: "reverse: 1 2 3", target: "3 2 1").logprobs
        let b = try trainer.model.score(input: "reverse: 1 2 3", target: "3 2 1").logprobs
        #expect(a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < 1e-4 }, "\(a) vs \(b)")

        let out = dir.appendingPathComponent("other")
        await #expect(throws: T5Error.self) {
            _ = try await Distiller.run(teacher: .init(directory: teacherDirectory), student: Fixtures.modelDirectory("t5-relu-tied"),
                                        train: [.examples("reverse", examples)], options: options, output: out)
        }
        #expect(FileManager.default.fileExists(atPath: out.path) == false)
    }

    /// A tokenizer of the same size with one piece changed is another tokenizer: refused, naming the id.
    @Test func aTokenizerDifferingInOnePieceIsRefused() throws {
        struct OnePieceRenamed: Tokenizer {
            let base: any Tokenizer
            var size: Int { base.size }
            var ordinaryIDs: Range<Int> { base.ordinaryIDs }
            var sentinelCount: Int { base.sentinelCount }
            func sentinelID(_ n: Int) -> Int { base.sentinelID(n) }
            func piece(for id: Int) -> String? { id == 7 ? "▁renamed" : base.piece(for: id) }
            func encode(_ text: String, appendEOS: Bool) -> [Int] { base.encode(text, appendEOS: appendEOS) }
            func decode(_ ids: [Int]) -> String { base.decode(ids) }
            var summary: String { base.summary }
            var files: [String: Data] { base.files }
        }
        let teacher = try T5Model(directory: Fixtures.modelDirectory("t5v11-gated-gelu"), packWeights: false)
        let student = T5Model(config: teacher.config, weights: teacher.weights, tokenizer: OnePieceRenamed(base: teacher.tokenizer),
                              hasSeparateLMHead: teacher.hasSeparateLMHead)
        let objective = try DistillationObjective(teacher: teacher)
        try objective.requireCompatible(student: teacher)
        #expect(throws: T5Error.invalidOption(name: "DistillationObjective.student", reason: "the student's tokenizer differs from the teacher's at id 7 (\"▁renamed\" vs \((teacher.tokenizer.piece(for: 7) ?? "").debugDescription)); they must be the same tokenizer")) {
            try objective.requireCompatible(student: student)
        }
    }
}

