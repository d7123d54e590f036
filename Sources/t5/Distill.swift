import ArgumentParser
import Foundation
import T5

struct Distill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Distill a teacher model into a smaller student on input/target pairs (word-level knowledge distillation).",
        discussion: """
            Each step minimizes alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || \
            softmax(student / T)), CE and KL each the mean over the step's target tokens, KL over the whole \
            vocabulary. --hidden-weight W adds W times the mean squared error between the residual stream entering \
            each student block and the one entering the teacher block it was copied from (else evenly spaced), \
            per stack, as distillation.py's hidden loss. The defaults (alpha \(DistillationObjective.defaultAlpha), T \(Int(DistillationObjective.defaultTemperature))) \
            are those of Shleifer & Rush 2020 (distillation.py: alpha_mlm 0.2, alpha_ce 0.8, T = 2). The teacher \
            runs in inference mode on every batch (no dropout; --teacher-weights bf16 or int8 halves or quarters \
            its memory). --alpha 1 is plain fine-tuning: the teacher is not run and the result is t5 finetune's.

            The student is --student DIR (any checkpoint sharing the teacher's tokenizer), or --student-init \
            teacher: a smaller copy of the teacher (shrink-and-fine-tune) keeping the blocks --student-layers \
            names (e.g. encoder=0,2,4,decoder=0,5; a stack left out keeps all its blocks), or as many as \
            --student-depth says (encoder=E,decoder=D), chosen by make_student.py's LAYERS_TO_COPY table (first \
            and last layer always); its embedding, final norms, relative position bias and head are the teacher's. \
            It is written to OUT/student-init before training. Or --student-config FILE: a fresh model of that \
            config.json, with T5's initialization seeded by --seed.

            Data, training flags and OUT's layout are t5 finetune's: OUT receives the student (config.json, \
            model.safetensors, the tokenizer, generation_config.json), checkpoint-N/ for --resume, and metrics.jsonl.
            """)

    @Option(parsing: .unconditional, help: ArgumentHelp("The teacher: a model directory, or a Hugging Face name in the local hub cache.", valueName: "DIR"))
    var teacher: String
    @Option(parsing: .unconditional, help: ArgumentHelp("Precision of the teacher's projection weights: f32, bf16 or int8 (default: as saved, else f32).", valueName: "P"))
    var teacherWeights: WeightPrecision?
    @Option(parsing: .unconditional, help: ArgumentHelp("The student to train: a model directory sharing the teacher's tokenizer.", valueName: "DIR"))
    var student: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("'teacher': start the student as a copy of the teacher's chosen blocks (with --student-layers or --student-depth).", valueName: "teacher"))
    var studentInit: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Teacher blocks the student copies, per stack: encoder=0,2,4,decoder=0,5 (a stack left out keeps all).", valueName: "SPEC"))
    var studentLayers: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Student depth per stack, encoder=E,decoder=D; the blocks are make_student.py's LAYERS_TO_COPY choice.", valueName: "SPEC"))
    var studentDepth: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("A config.json for a fresh student with T5's initialization (seeded by --seed).", valueName: "FILE"))
    var studentConfig: String?
    @Option(parsing: .unconditional, help: "Weight of the cross-entropy against the labels, in [0, 1]; the KL term gets 1 - alpha.")
    var alpha: Float = DistillationObjective.defaultAlpha
    @Option(parsing: .unconditional, help: "Softmax temperature of the KL term, above 0.")
    var temperature: Float = DistillationObjective.defaultTemperature
    @Flag(help: "Sequence-level distillation (Kim & Rush 2016): train on the teacher's beam-search outputs for the --train inputs instead of their targets (generated once, kept in OUT/teacher-targets.jsonl). With --alpha 1, plain sequence-level KD; otherwise combined with the word-level loss.")
    var sequenceLevel = false
    @Option(parsing: .unconditional, help: ArgumentHelp("Beam width of the teacher's outputs with --sequence-level (default \(Self.defaultTeacherBeams)).", valueName: "N"))
    var teacherBeams: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp("Add W times the mean squared error between the student's block inputs and the teacher's at the copied (else evenly spaced) layers, both stacks (default 0: none).", valueName: "W"))
    var hiddenWeight: Float = 0

    @OptionGroup var data: TrainingDataFlags
    @Option(parsing: .unconditional, help: ArgumentHelp("Output directory.", valueName: "DIR"))
    var out: String
    @OptionGroup var trainingFlags: TrainingFlags
    @OptionGroup var runtime: RuntimeOptions
    @Flag(help: "Print a JSON summary of the run on stdout.") var json = false

    /// The teacher's beam width for --sequence-level: the width the seq2seq distillation recipes generate
    /// pseudo-labels with (REFERENCES.md §1: Seq-KD with teacher beam 4).
    static let defaultTeacherBeams = 4

    /// Where the copied student of --student-init teacher is written.
    static let studentInitDirectory = "student-init"

    func validate() throws {
        if !(alpha >= 0 && alpha <= 1) { throw invalidValue("--alpha", "must be in [0, 1], got \(alpha)") }
        if !(temperature > 0 && temperature.isFinite) { throw invalidValue("--temperature", "must be a finite number above 0, got \(temperature)") }
        if !(hiddenWeight >= 0 && hiddenWeight.isFinite) { throw invalidValue("--hidden-weight", "must be a finite number, at least 0, got \(hiddenWeight)") }
        if let teacherBeams {
            if !sequenceLevel { throw ValidationError("--teacher-beams needs --sequence-level") }
            if teacherBeams < 1 { throw invalidValue("--teacher-beams", "must be at least 1, got \(teacherBeams)") }
        }
        let sources = [student.map { _ in "--student" }, studentInit.map { _ in "--student-init" }, studentConfig.map { _ in "--student-config" }].compactMap { $0 }
        if sources.count != 1 {
            throw ValidationError(sources.isEmpty
                ? "give the student: --student DIR, --student-init teacher, or --student-config FILE"
                : "give one student, not \(sources.joined(separator: " and "))")
        }
        if let studentInit, studentInit != "teacher" {
            throw invalidValue("--student-init", "must be 'teacher' (copy the teacher's blocks), got '\(studentInit)'")
        }
        if studentInit != nil {
            if (studentLayers == nil) == (studentDepth == nil) {
                throw ValidationError("--student-init teacher needs --student-layers or --student-depth (one of them)")
            }
        } else if studentLayers != nil || studentDepth != nil {
            throw ValidationError("--student-layers and --student-depth need --student-init teacher")
        }
        if let studentLayers { _ = try Self.parseStacks(studentLayers, flag: "--student-layers", list: true) }
        if let studentDepth { _ = try Self.parseStacks(studentDepth, flag: "--student-depth", list: false) }
        try data.validate(with: trainingFlags)
    }

    /// "encoder=0,2,4,decoder=0,5" → ["encoder": [0, 2, 4], "decoder": [0, 5]]; with `list` false each stack
    /// takes one number ("encoder=6,decoder=3").
    static func parseStacks(_ spec: String, flag: String, list: Bool) throws -> [String: [Int]] {
        var stacks = [String: [Int]](), current: String?
        for part in spec.split(separator: ",", omittingEmptySubsequences: false) {
            var value = Substring(part)
            if let eq = part.firstIndex(of: "=") {
                let name = String(part[..<eq]).trimmingCharacters(in: .whitespaces)
                guard name == "encoder" || name == "decoder" else {
                    throw invalidValue(flag, "'\(name)' is not a stack (encoder or decoder) in '\(spec)'")
                }
                if stacks[name] != nil { throw invalidValue(flag, "\(name) is given twice in '\(spec)'") }
                current = name
                stacks[name] = []
                value = part[part.index(after: eq)...]
            }
            guard let current else { throw invalidValue(flag, "'\(spec)' does not start with encoder= or decoder=") }
            guard let n = Int(value.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                throw invalidValue(flag, "'\(value)' is not a \(list ? "layer index" : "depth") in '\(spec)'")
            }
            stacks[current, default: []].append(n)
        }
        if !list {
            for (name, values) in stacks where values.count != 1 || values[0] < 1 {
                throw invalidValue(flag, "\(name) needs one depth of at least 1 in '\(spec)'")
            }
        }
        return stacks
    }

    func run() async throws {
        runtime.apply()
        let options = try trainingFlags.options(evalMaxNewTokens: data.maxTargetTokens)
        // As finetune: never beside files we did not write. A run stopped before its first checkpoint also
        // leaves the teacher's targets and, continued with --resume, the copied student.
        let resume = trainingFlags.resume
        let session = try TrainingSession(out: out, flags: trainingFlags, runtime: runtime, json: json) { name in
            name == TeacherTargets.fileName || (resume && name == Self.studentInitDirectory)
        }
        let output = session.output

        // The teacher, for inference; the student, and the files it is saved with.
        let teacherDirectory = try ModelLocation.resolve(teacher)
        let teacherModel: T5Model
        do {
            teacherModel = try T5Model(directory: teacherDirectory, weights: teacherWeights)
            if !teacherModel.hasDecoder { throw T5Error.noDecoder(architecture: teacherModel.architecture) }
        } catch {
            throw T5Error.invalidOption(name: "--teacher", reason: "\(teacher) is not a model to distill from: \(error)")
        }
        let (studentModel, files, copiedLayers) = try makeStudent(teacher: teacherModel, teacherDirectory: teacherDirectory)

        let frozen = try session.frozenKeys(studentModel)
        let training = try data.training(tokenizer: studentModel.tokenizer)
        let validation = try data.validation(tokenizer: studentModel.tokenizer)
        let runFiles = session.applyingDropout(to: files)

        let objective = try DistillationObjective(
            teacher: teacherModel, alpha: alpha, temperature: temperature, labelSmoothing: options.labelSmoothing,
            teacherName: teacherDirectory.standardizedFileURL.path, hiddenWeight: hiddenWeight, hiddenLayers: copiedLayers)
        try objective.requireCompatible(student: studentModel)
        // Sequence level: the teacher's outputs replace the targets (generated once, then read from OUT).
        var trainingData = training
        if sequenceLevel {
            trainingData = try teacherTargets(training, teacher: teacherModel, teacherName: teacherDirectory.standardizedFileURL.path,
                                              output: output)
        }
        // Everything that can fail on bad input happens before anything is written or printed (but the
        // teacher's targets, which are only written once every input has been checked).
        let trainer = session.hasCheckpoint
            ? try Trainer.resume(from: output, training: trainingData, validation: validation, options: options, frozen: frozen,
                                 files: runFiles, objective: objective)
            : try Trainer(model: studentModel, training: trainingData, validation: validation, options: options, frozen: frozen,
                          files: runFiles, objective: objective)
        try session.run(trainer, model: studentModel, frozen: frozen) {
            if let copiedLayers, !session.hasCheckpoint {
                let directory = output.appendingPathComponent(Self.studentInitDirectory)
                if !FileManager.default.fileExists(atPath: directory.path) {
                    try OutputDirectory.writeAtomically(directory, option: "--out") { (url: URL) throws(T5Error) in
                        try Checkpoint.writeModel(studentModel, files: files, to: url)
                    }
                }
                note("student: teacher encoder layers \(copiedLayers.encoder.map(String.init).joined(separator: ",")), decoder layers \(copiedLayers.decoder.map(String.init).joined(separator: ",")) (written to \(directory.path))")
            }
            note("distilling \(teacher) (\(teacherModel.config.numLayers)+\(teacherModel.config.numDecoderLayers) layers, \(teacherModel.weightPrecision.rawValue)) into a student of \(studentModel.config.numLayers)+\(studentModel.config.numDecoderLayers) layers; alpha \(alpha), temperature \(temperature)")
            data.report(training, label: "train")
            if let validation { data.report(validation, label: "valid") }
        }
    }

    /// `training` with the teacher's beam-search outputs as targets, from OUT/teacher-targets.jsonl when it
    /// matches (same teacher, beams, length and inputs), else generated with progress and written there.
    private func teacherTargets(_ training: TrainingData, teacher: T5Model, teacherName: String, output: URL) throws -> TrainingData {
        do {
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        } catch {
            throw T5Error.writeFailed(path: output.path, reason: error.localizedDescription)
        }
        let beams = teacherBeams ?? Self.defaultTeacherBeams
        let live = !runtime.quiet && isatty(STDERR_FILENO) != 0
        var lastShown = -1
        let started = DispatchTime.now().uptimeNanoseconds
        let (replaced, reused) = try TeacherTargets.replacing(
            training, teacher: teacher, teacherName: teacherName, beams: beams, maxTargetTokens: data.maxTargetTokens,
            batchSize: trainingFlags.batchSize, cache: output.appendingPathComponent(TeacherTargets.fileName)
        ) { done, total in
            guard !runtime.quiet else { return }
            let percent = 100 * done / max(total, 1)
            if live {
                FileHandle.standardError.write(Data("\r\u{1B}[Kteacher targets: \(done)/\(total) inputs (\(percent)%)".utf8))
                if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
            } else if percent / 10 != lastShown / 10 || done == total {
                printError("teacher targets: \(done)/\(total) inputs (\(percent)%)")
            }
            lastShown = percent
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        note(reused
            ? "teacher targets: \(replaced.exampleCount) read from \(output.appendingPathComponent(TeacherTargets.fileName).path)"
            : String(format: "teacher targets: %d generated with %d beams in %.1f s", replaced.exampleCount, beams, seconds))
        return replaced
    }

    /// The student of --student, --student-init teacher or --student-config, the files it is saved with, and the
    /// teacher layers it copies (--student-init only).
    private func makeStudent(teacher: T5Model, teacherDirectory: URL) throws -> (T5Model, ModelDirectory, StudentLayers?) {
        if let student {
            let directory = try ModelLocation.resolve(student)
            let model = try T5Model(directory: directory, weights: .f32, packWeights: false)
            return (model, try .copying(from: directory, config: model.config), nil)
        }
        if let studentConfig {
            let config = try T5Config.load(from: URL(fileURLWithPath: studentConfig))
            try config.validate(path: studentConfig)
            let model = try T5Model.randomlyInitialized(config: config, tokenizer: teacher.tokenizer,
                                                        separateLMHead: config.tieWordEmbeddings == false, seed: trainingFlags.seed)
            return (model, ModelDirectory(config: config, tokenizer: teacher.tokenizer), nil)
        }
        // --student-init teacher: the copy needs the teacher's fp32 values, whatever precision it runs in.
        let full = try T5Model(directory: teacherDirectory, weights: .f32, packWeights: false)
        let c = full.config
        var layers = StudentLayers(encoder: Array(0..<c.numLayers), decoder: Array(0..<c.numDecoderLayers))
        if let studentLayers {
            let stacks = try Self.parseStacks(studentLayers, flag: "--student-layers", list: true)
            if let e = stacks["encoder"] { layers.encoder = e }
            if let d = stacks["decoder"] { layers.decoder = d }
        } else if let studentDepth {
            let stacks = try Self.parseStacks(studentDepth, flag: "--student-depth", list: false)
            for (name, teacherDepth) in [("encoder", c.numLayers), ("decoder", c.numDecoderLayers)] {
                guard let depth = stacks[name]?.first else { continue }
                if depth > teacherDepth {
                    throw T5Error.invalidOption(name: "--student-depth", reason: "\(name)=\(depth) is deeper than the teacher's \(teacherDepth) \(name) layers")
                }
                let (picked, tabulated) = StudentLayers.picked(student: depth, teacher: teacherDepth)
                if !tabulated {
                    warn("no LAYERS_TO_COPY entry for a \(teacherDepth)-layer \(name) -> \(depth): copying the first \(depth) (as make_student.py does)")
                }
                if name == "encoder" { layers.encoder = picked } else { layers.decoder = picked }
            }
        }
        let model = try full.student(copying: layers)
        var files = try ModelDirectory.copying(from: teacherDirectory, config: model.config)
        files.configUpdates = [:]
        return (model, files, layers)
    }
}
