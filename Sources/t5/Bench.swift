import ArgumentParser
import Foundation
import T5

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure encoder, decode and first-token speed and peak memory on synthetic inputs.",
        discussion: """
            Inputs are 32 random tokens (128 for the encoder row); every decode produces exactly 64 new tokens \
            (eos suppressed). Each row runs once to warm up, then --runs times; medians are reported with min-max.

            --finetune measures the training step instead: a ParameterStore copied from the model, then \
            zeroGradients + accumulateGradients (forward, cross-entropy, backward) on a synthetic batch of 8 \
            inputs of 64 tokens and 8 targets of 32 tokens (eos last, other ids random ordinary pieces), \
            dropout as config.json's dropout_rate, then one optimizer step (lr 1e-4): the optimizer step IS \
            included in the timed step (its share is reported apart). --optimizer adafactor is transformers' \
            Adafactor(lr=1e-4, scale_parameter=False, relative_step=False, warmup_init=False) with its other \
            defaults; --optimizer adamw is torch.optim.AdamW(lr=1e-4) with torch's other defaults; the \
            default is t5 finetune's, \(TrainingFlags.defaultOptimizer.rawValue). finetune_tokens_per_s = \
            8 · (64 + 32) / median step time, comparable with tools/bench/pytorch_finetune.py (same \
            --optimizer). The JSON keys do not name the optimizer; the text rows do. Also reported: \
            the process CPU time per step (all threads; steadier than wall time on a shared machine) and, \
            outside the step, the gradient-norm clipping the Trainer adds by default.

            --pretrain measures t5 pretrain's step the same way on a batch of 8 span-corrupted examples: \
            chunks of a seeded synthetic stream of ordinary pieces, corrupted by t5 pretrain's own code \
            (SpanCorruption, seed 0), so the inputs are exactly --input-length tokens (default \(Self.defaultPretrainInputLength), \
            to keep a run short; t5 pretrain's is 512) and the targets as long as compute_input_and_target_lengths \
            says (29 for 128, 114 for 512 at the default --noise-density 0.15 and --mean-span-length 3). The corruption is data loading, not part of \
            the timed step (reported apart). pretrain_tokens_per_s = 8 · (input + target) / median step time, \
            comparable with tools/bench/pytorch_finetune.py --pretrain.

            --distill --teacher DIR measures t5 distill's step with --model as the student on the fine-tuning \
            batch: the teacher's forward in inference mode (encoder once per batch, no dropout, no gradients), \
            then the student's zeroGradients + forward + loss (alpha \(DistillationObjective.defaultAlpha) · CE + (1 − alpha) · T² · KL, \
            T \(Int(DistillationObjective.defaultTemperature)), t5 distill's defaults) + backward, then the optimizer step; \
            distill_tokens_per_s = 8 · (64 + 32) / median step time, comparable with tools/bench/pytorch_distill.py.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(parsing: .unconditional, help: "Timed runs per row (after one warm-up).") var runs = 5
    @OptionGroup var runtime: RuntimeOptions
    @Flag(help: "Print one JSON object whose keys name the rows.") var json = false
    @Flag(help: "Measure embedding instead: the encoder and masked mean pooling over 1 and 32 inputs of 128 tokens (the batch of 32 in one call).")
    var embed = false
    @Flag(help: "Measure the fine-tuning step (forward + backward + optimizer step) instead of inference.")
    var finetune = false
    @Flag(help: "Measure the pretraining step (span-corrupted batch, forward + backward + optimizer step) instead of inference.")
    var pretrain = false
    @Option(parsing: .unconditional, help: ArgumentHelp("With --pretrain: length of every corrupted input in tokens, </s> included (default \(Self.defaultPretrainInputLength); t5 pretrain's is 512).", valueName: "N"))
    var inputLength: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp("With --pretrain: fraction of each chunk's tokens replaced by noise spans (default 0.15).", valueName: "X"))
    var noiseDensity: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp("With --pretrain: mean length of a noise span (default 3).", valueName: "X"))
    var meanSpanLength: Double?
    @Flag(help: "Measure the distillation step (teacher forward + student forward + backward + optimizer step) with --model as the student; needs --teacher.")
    var distill = false
    @Option(parsing: .unconditional, help: ArgumentHelp("With --distill: the teacher, a model directory sharing --model's vocabulary.", valueName: "DIR"))
    var teacher: String?
    @Option(parsing: .unconditional, help: "With --finetune, --pretrain or --distill: the optimizer of the timed step, adamw (torch's defaults) or adafactor (transformers' Adafactor(lr=1e-4, scale_parameter=False, relative_step=False, warmup_init=False)); default \(TrainingFlags.defaultOptimizer.rawValue), as t5 finetune's.")
    var optimizer: TrainingFlags.OptimizerName?
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Measure only these rows (comma-separated: \(Self.rowNames.joined(separator: ", "))); steady decode needs ttft and greedy.",
        valueName: "rows"))
    var only: String?

    static let rowNames = ["encoder", "ttft", "greedy", "beam4", "batch16"]
    private var selected: Set<String> {
        guard let only else { return Set(Self.rowNames) }
        return Set(only.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    static let defaultPretrainInputLength = 128

    /// The training step measured instead of inference, by its flag; nil without one.
    private var trainingMode: String? {
        finetune ? "--finetune" : pretrain ? "--pretrain" : distill ? "--distill" : nil
    }

    func validate() throws {
        if runs < 1 { throw invalidValue("--runs", "must be at least 1, got \(runs)") }
        let modes = [finetune, pretrain, distill].filter { $0 }.count
        if modes > 1 { throw ValidationError("--finetune, --pretrain and --distill each measure their own step: give one") }
        if let mode = trainingMode, let weights = modelOptions.weights, weights != .f32 { throw ValidationError("\(mode) trains fp32 weights: drop --weights") }
        if distill && teacher == nil { throw ValidationError("--distill needs --teacher DIR (the student is --model)") }
        if teacher != nil && !distill { throw ValidationError("--teacher names the distillation step's teacher: add --distill") }
        if !pretrain, let flag = [inputLength.map { _ in "--input-length" }, noiseDensity.map { _ in "--noise-density" },
                                  meanSpanLength.map { _ in "--mean-span-length" }].compactMap({ $0 }).first {
            throw ValidationError("\(flag) shapes the pretraining batch: add --pretrain")
        }
        if pretrain {
            // Every check that needs no tokenizer (the sentinel count is checked once it is loaded), as t5 pretrain's.
            try checkWhileParsing { () throws(T5Error) in _ = try spanCorruption(sentinelCount: .max) }
        }
        if selected.isEmpty { throw ValidationError("--only: name at least one row (\(Self.rowNames.joined(separator: ", ")))") }
        if let bad = selected.first(where: { !Self.rowNames.contains($0) }) {
            throw ValidationError("--only: unknown row '\(bad)' (rows: \(Self.rowNames.joined(separator: ", ")))")
        }
        if let mode = trainingMode, only != nil { throw ValidationError("--only selects inference rows: drop it with \(mode)") }
        if embed && (trainingMode != nil || only != nil) { throw ValidationError("--embed measures its own rows: drop --finetune, --pretrain, --distill and --only") }
        if optimizer != nil && trainingMode == nil { throw ValidationError("--optimizer chooses the training step's optimizer: add --finetune, --pretrain or --distill") }
    }

    /// The corruption of `t5 pretrain --input-length N --noise-density X --mean-span-length Y` with these flags.
    private func spanCorruption(sentinelCount: Int) throws(T5Error) -> SpanCorruption {
        try SpanCorruption(inputLength: inputLength ?? Self.defaultPretrainInputLength, noiseDensity: noiseDensity ?? 0.15,
                           meanSpanLength: meanSpanLength ?? 3, sentinelCount: sentinelCount)
    }

    struct Stat: Encodable {
        let median: Double
        let min: Double
        let max: Double
    }

    func run() async throws {
        runtime.apply()
        let start = Date()
        let model = try modelOptions.load(forInference: trainingMode == nil)
        let loadMS = Date().timeIntervalSince(start) * 1000
        var rng = SystemRandomNumberGenerator()
        let firstOrdinary = model.tokenizer.ordinaryIDs.lowerBound, lastOrdinary = model.tokenizer.ordinaryIDs.upperBound - 1
        func randomInput(_ n: Int) -> [Int] {
            (0..<(n - 1)).map { _ in Int.random(in: firstOrdinary...lastOrdinary, using: &rng) } + [1]
        }
        func measure(_ body: () throws -> Void) rethrows -> Stat { try measureRuns(body) }
        func exactly(_ n: Int, beams: Int = 1) -> GenerationOptions {
            var o = GenerationOptions()
            o.maxNewTokens = n
            o.minNewTokens = n
            o.numBeams = beams
            return o
        }
        if trainingMode != nil {
            try runTrainingStep(model: model)
            return
        }
        if embed {
            let one = [randomInput(128)], batch = (0..<32).map { _ in randomInput(128) }
            // Mixed lengths, seeded: 32 inputs of 16-128 tokens, where packed rows skip the padding.
            var lengths = SeededGenerator(seed: 7)
            let mixed = (0..<32).map { _ in randomInput(16 + Int(lengths.next() % 113)) }
            let mixedTokens = mixed.reduce(0) { $0 + $1.count }
            let b1 = try measure { _ = try model.embed(ids: one) }
            let b32 = try measure { _ = try model.embed(ids: batch) }
            let bMixed = try measure { _ = try model.embed(ids: mixed) }
            let rows: [(String, String, Double, Stat?)] = [
                ("load_ms", "load, ms", loadMS, nil),
                ("embed_b1_ms", "embed 1 x 128 tokens (mean pooled), ms", b1.median, b1),
                ("embed_b32_ms", "embed 32 x 128 tokens (mean pooled), ms", b32.median, b32),
                ("embed_b1_tokens_per_s", "embed batch 1, tokens/s", 128 / b1.median * 1000, nil),
                ("embed_b32_tokens_per_s", "embed batch 32, tokens/s", 32 * 128 / b32.median * 1000, nil),
                ("embed_mixed_b32_ms", "embed 32 x 16-128 tokens (\(mixedTokens) in all), ms", bMixed.median, bMixed),
                ("peak_rss_mb", "peak RSS, MB", Double(peakResidentBytes()) / 1e6, nil),
            ]
            if json { try printJSON(jsonObject(rows)) } else { printRows(rows) }
            return
        }
        let input32 = randomInput(32), input128 = randomInput(128)
        let batch16 = (0..<16).map { _ in randomInput(32) }

        let pick = selected
        func row(_ name: String, _ body: () throws -> Void) rethrows -> Stat? {
            pick.contains(name) ? try measure(body) : nil
        }
        let encoder = try row("encoder") { _ = try model.encode([input128]) }
        let ttft = try row("ttft") { _ = try model.generate(ids: [input32], options: exactly(1)) }
        let greedy64 = try row("greedy") { _ = try model.generate(ids: [input32], options: exactly(64)) }
        let beam4 = try row("beam4") { _ = try model.generate(ids: [input32], options: exactly(64, beams: 4)) }
        let greedy16 = try row("batch16") { _ = try model.generate(ids: batch16, options: exactly(64)) }
        let peakMB = Double(peakResidentBytes()) / 1e6

        var rows: [(String, String, Double, Stat?)] = [("load_ms", "load, ms", loadMS, nil)]
        if let encoder {
            rows.append(("encoder_b1_ms", "encoder 1 x 128 tokens, ms", encoder.median, encoder))
            rows.append(("encoder_tokens_per_s", "encoder tokens/s", 128 / encoder.median * 1000, nil))
        }
        if let ttft { rows.append(("ttft_ms", "time to first token (32-token input), ms", ttft.median, ttft)) }
        if let ttft, let greedy64 {
            rows.append(("greedy_b1_ms_per_token", "steady greedy decode, batch 1, ms/token", (greedy64.median - ttft.median) / 63, nil))
        }
        if let greedy64 {
            rows.append(("greedy_b1_tokens_per_s", "greedy batch 1, new tokens/s (64 tokens)", 64 / greedy64.median * 1000, greedy64))
        }
        if let beam4 { rows.append(("beam4_b1_tokens_per_s", "beam 4, batch 1, new tokens/s", 64 / beam4.median * 1000, beam4)) }
        if let greedy16 {
            rows.append(("greedy_b16_tokens_per_s", "greedy batch 16, total new tokens/s", 16 * 64 / greedy16.median * 1000, greedy16))
        }
        rows.append(("peak_rss_mb", "peak RSS, MB", peakMB, nil))
        if json {
            try printJSON(jsonObject(rows))
        } else {
            printRows(rows)
        }
    }

    /// The rows by key, plus the fastest and slowest timed run of each timed row in ms, named after the
    /// row without its unit: `greedy_b1_tokens_per_s` has `greedy_b1_run_min_ms` and `greedy_b1_run_max_ms`.
    private func jsonObject(_ rows: [(String, String, Double, Stat?)]) -> [String: Double] {
        func round(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
        var object = [String: Double]()
        for (key, _, value, stat) in rows {
            object[key] = round(value)
            if let stat {
                let base = Self.withoutUnit(key)
                object[base + "_run_min_ms"] = round(stat.min)
                object[base + "_run_max_ms"] = round(stat.max)
            }
        }
        return object
    }

    /// `key` without its unit suffix (`_tokens_per_s`, `_ms_per_token`, `_ms`).
    static func withoutUnit(_ key: String) -> String {
        for unit in ["_tokens_per_s", "_ms_per_token", "_ms"] where key.hasSuffix(unit) {
            return String(key.dropLast(unit.count))
        }
        return key
    }

    private func printRows(_ rows: [(String, String, Double, Stat?)]) {
        // As wide as the longest label: a label is never cut.
        let width = max(44, rows.map(\.1.count).max() ?? 0)
        for (_, label, value, stat) in rows {
            let range = stat.map { String(format: "  (runs: median %.2f ms, min %.2f, max %.2f)", $0.median, $0.min, $0.max) } ?? ""
            print(label.padding(toLength: width, withPad: " ", startingAt: 0) + String(format: " %10.2f", value) + range)
        }
    }

    /// `--finetune`, `--pretrain`, `--distill`: a training step on a synthetic batch, timed as the Trainer runs it.
    /// `--finetune` and `--distill` use a batch shaped like tools/bench/pytorch_finetune.py's (8 inputs of 64
    /// tokens, 8 targets of 32); `--pretrain` one of 8 span-corrupted chunks (`pretrainBatch`). The step: zero
    /// the gradients, bind the objective to the batch (`--distill`: the teacher's forward; otherwise nothing),
    /// forward + loss + backward, one optimizer step at lr 1e-4: AdamW with torch's other defaults, or
    /// Adafactor in transformers' fixed-rate mode (`Adafactor.Options.fixed`: no parameter scale, no relative
    /// step, no warmup; eps (1e-30, 1e-3), clip threshold 1, decay rate −0.8, no beta1, no weight decay).
    private func runTrainingStep(model: T5Model) throws {
        let batchSize = Self.trainingBatchSize
        let optimizerName: String
        let optimizer: any Optimizer
        switch self.optimizer ?? TrainingFlags.defaultOptimizer {
        case .adamw:
            optimizerName = "AdamW"
            optimizer = AdamW(.init(learningRate: 1e-4))
        case .adafactor:
            optimizerName = "Adafactor"
            optimizer = Adafactor(.fixed(learningRate: 1e-4))
        }
        let prefix: String, stepLabel: String
        let batch: TrainingBatch
        var objective: any BatchObjective = CrossEntropyObjective()
        var corruptionTime: Stat?
        if pretrain {
            let (corrupted, time) = try pretrainBatch(model: model)
            batch = corrupted
            corruptionTime = time
            prefix = "pretrain"
            stepLabel = "pretraining step (fwd+bwd+\(optimizerName)), ms"
        } else {
            batch = Self.finetuneBatch(model: model)
            if distill {
                objective = try distillationObjective(student: model)
                prefix = "distill"
                stepLabel = "distillation step (teacher + student fwd+bwd+\(optimizerName)), ms"
            } else {
                prefix = "finetune"
                stepLabel = "fine-tuning step (fwd+bwd+\(optimizerName)), ms"
            }
        }

        let store = ParameterStore(model: model)
        var generator = SeededGenerator(seed: 0)
        var loss: Float = 0
        var steps = [Double](), teachers = [Double](), backwards = [Double](), updates = [Double](), cpu = [Double](), clips = [Double]()
        for run in 0...runs {  // run 0 warms up
            let c0 = processCPUSeconds()
            let t0 = DispatchTime.now().uptimeNanoseconds
            // The objective is bound to the batch (--distill: the teacher runs) before the student's pass, as in
            // the Trainer; for the other steps binding is free.
            let bound = try objective.bound(to: batch)
            let tb = DispatchTime.now().uptimeNanoseconds
            store.zeroGradients()
            loss = store.accumulateGradients(batch, objective: bound, dropoutRate: model.config.dropoutRate, generator: &generator).loss
            let t1 = DispatchTime.now().uptimeNanoseconds
            optimizer.step(parameters: store.values, gradients: store.gradients, learningRate: 1e-4)
            let t2 = DispatchTime.now().uptimeNanoseconds
            let c1 = processCPUSeconds()
            // Not part of the step (PyTorch's side does not clip either), but the Trainer clips by default.
            let t3 = DispatchTime.now().uptimeNanoseconds
            GradientClipping.clip(Array(store.gradients.values), maxNorm: 1e-3)  // always scales
            let t4 = DispatchTime.now().uptimeNanoseconds
            if run > 0 {
                clips.append(Double(t4 - t3) / 1e6)
                cpu.append((c1 - c0) * 1000)
                steps.append(Double(t2 - t0) / 1e6)
                teachers.append(Double(tb - t0) / 1e6)
                backwards.append(Double(t1 - tb) / 1e6)
                updates.append(Double(t2 - t1) / 1e6)
            }
        }
        let step = Self.stat(steps), backward = Self.stat(backwards), update = Self.stat(updates), cpuStep = Self.stat(cpu), clip = Self.stat(clips)
        let inputLength = batch.inputIDs[0].count, targetLength = batch.targetIDs[0].count
        let tokens = Double(batchSize * (inputLength + targetLength))
        let tokensLabel = ["finetune": "fine-tuning", "pretrain": "pretraining", "distill": "distillation"][prefix] ?? prefix
        var rows: [(String, String, Double, Stat?)] = [
            ("\(prefix)_step_ms", stepLabel, step.median, step),
        ]
        if distill {
            let teacherTime = Self.stat(teachers)
            rows.append(("distill_teacher_ms", "  teacher forward (inference), ms", teacherTime.median, teacherTime))
            rows.append(("distill_forward_backward_ms", "  zero grads + student forward + backward, ms", backward.median, backward))
        } else {
            rows.append(("\(prefix)_forward_backward_ms", "  zero grads + forward + backward, ms", backward.median, backward))
        }
        rows += [
            ("\(prefix)_optimizer_ms", "  \(optimizerName) step, ms", update.median, update),
            ("\(prefix)_cpu_ms", "  CPU time of the step, all threads, ms", cpuStep.median, cpuStep),
            ("\(prefix)_clip_ms", "gradient norm + clip (Trainer), not in step, ms", clip.median, clip),
        ]
        if let corruptionTime {
            rows.append(("pretrain_corruption_ms", "span corruption of the batch, not in step, ms", corruptionTime.median, corruptionTime))
        }
        rows += [
            ("\(prefix)_tokens_per_s", "\(tokensLabel) tokens/s (\(batchSize) x (\(inputLength) + \(targetLength)) per step)", tokens / step.median * 1000, nil),
            ("\(prefix)_loss", "loss of the last step", Double(loss), nil),
            ("peak_rss_mb", "peak RSS, MB", Double(peakResidentBytes()) / 1e6, nil),
        ]
        if json {
            try printJSON(jsonObject(rows))
        } else {
            printRows(rows)
        }
    }

    static let trainingBatchSize = 8

    /// `count` ordinary pieces that are also rows of the embedding (a small test model may have fewer).
    private static func ordinaryIDs(_ count: Int, model: T5Model, generator: inout SeededGenerator) -> [Int] {
        let lastID = min(model.tokenizer.ordinaryIDs.upperBound, model.config.vocabSize) - 1
        return (0..<count).map { _ in Int.random(in: 3...lastID, using: &generator) }
    }

    /// The batch of `--finetune` and `--distill`: 8 inputs of 64 tokens and 8 targets of 32, eos last, the
    /// other ids random ordinary pieces, seeded so that the loss is comparable between runs.
    private static func finetuneBatch(model: T5Model) -> TrainingBatch {
        var ids = SeededGenerator(seed: 1)
        var inputs = [[Int]](), targets = [[Int]]()
        for _ in 0..<trainingBatchSize { inputs.append(ordinaryIDs(63, model: model, generator: &ids) + [model.config.eosTokenID]) }
        for _ in 0..<trainingBatchSize { targets.append(ordinaryIDs(31, model: model, generator: &ids) + [model.config.eosTokenID]) }
        return TrainingBatch(inputIDs: inputs, targetIDs: targets)
    }

    /// The batch of `--pretrain`: 8 chunks of a seeded synthetic stream of ordinary pieces, each corrupted as
    /// t5 pretrain's batch sampler corrupts the chunk it reads (`SpanCorruption.corrupt(_:index:seed:)`), and
    /// the time that corruption takes (not part of the step: t5 pretrain does it while loading data).
    private func pretrainBatch(model: T5Model) throws -> (TrainingBatch, Stat) {
        let corruption = try spanCorruption(sentinelCount: model.tokenizer.sentinelCount)
        var ids = SeededGenerator(seed: 1)
        var chunks = [[Int]]()
        for _ in 0..<Self.trainingBatchSize { chunks.append(Self.ordinaryIDs(corruption.rawLength, model: model, generator: &ids)) }
        let tokenizer = model.tokenizer
        func corrupt() -> TrainingBatch {
            let examples = chunks.indices.map { corruption.corrupt(chunks[$0], index: $0, seed: 0, tokenizer: tokenizer) }
            return TrainingBatch(inputIDs: examples.map(\.inputIDs), targetIDs: examples.map(\.targetIDs))
        }
        let batch = corrupt()
        // The sentinels are the tokenizer's last ids; a model whose embedding is smaller cannot read them.
        if let bad = (batch.inputIDs + batch.targetIDs).joined().first(where: { $0 >= model.config.vocabSize }) {
            throw T5Error.invalidOption(name: "--pretrain", reason: "the corrupted batch has token id \(bad) (a sentinel of the tokenizer's \(tokenizer.size) ids), outside the model's vocab_size \(model.config.vocabSize)")
        }
        return (batch, measureRuns { _ = corrupt() })
    }

    /// `--teacher` as t5 distill loads it (its saved precision), with t5 distill's default α and τ, checked
    /// against the student (`--model`).
    private func distillationObjective(student: T5Model) throws(T5Error) -> DistillationObjective {
        let name = teacher ?? ""
        let directory = try ModelLocation.resolve(name)
        let objective = try DistillationObjective(teacher: try T5Model(directory: directory), teacherName: directory.path)
        do {
            try objective.requireCompatible(student: student)
        } catch {
            guard case .invalidOption(_, let reason) = error else { throw error }
            throw .invalidOption(name: "--teacher", reason: "\(name) cannot teach --model: \(reason)")
        }
        return objective
    }

    /// Median, fastest and slowest of `times`.
    private static func stat(_ times: [Double]) -> Stat {
        let sorted = times.sorted()
        return Stat(median: sorted[sorted.count / 2], min: sorted[0], max: sorted[sorted.count - 1])
    }

    /// `body` once to warm up, then timed `runs` times, in ms.
    private func measureRuns(_ body: () throws -> Void) rethrows -> Stat {
        try body()
        var times = [Double]()
        for _ in 0..<runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        return Self.stat(times)
    }
}

/// User + system CPU time of this process so far, all threads (getrusage).
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Peak resident set size of this process, from getrusage (kilobytes on Linux).
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
}
