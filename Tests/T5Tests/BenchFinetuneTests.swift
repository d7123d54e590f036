import Foundation
import Testing
@testable import T5

/// `t5 bench --finetune`, `--pretrain` and `--distill` on fixture models: the JSON keys scripts read (AdamW and
/// Adafactor), the optimizer's name in the text rows, and the one-line refusals (fp32 only; --optimizer only
/// with a training step; one step at a time; --teacher with --distill and back; the teacher's vocabulary).
@Suite struct BenchFinetuneTests {
    @Test(arguments: ["adamw", "adafactor"])
    func finetuneRowsAsJSON(optimizer: String) throws {
        let r = try CLITests().run([
            "bench", "--finetune", "--optimizer", optimizer, "--json", "--runs", "1",
            "--model", Fixtures.modelDirectory("t5-relu-tied").path,
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Double])
        for key in ["finetune_tokens_per_s", "finetune_step_ms", "finetune_forward_backward_ms", "finetune_optimizer_ms", "finetune_cpu_ms"] {
            #expect((object[key] ?? 0) > 0, "\(optimizer): \(key) missing or not positive in \(r.stdout)")
        }
        let loss = try #require(object["finetune_loss"])
        #expect(loss.isFinite && loss > 0)
    }

    @Test func adafactorStepRowsAsText() throws {
        let r = try CLITests().run([
            "bench", "--finetune", "--optimizer", "adafactor", "--runs", "1",
            "--model", Fixtures.modelDirectory("t5-relu-tied").path,
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("fine-tuning step (fwd+bwd+Adafactor), ms"), "\(r.stdout)")
        #expect(r.stdout.contains("  Adafactor step, ms"), "\(r.stdout)")
        #expect(!r.stdout.contains("AdamW"), "\(r.stdout)")
    }

    /// Without --optimizer, the step is t5 finetune's default optimizer (as its --help shows it), and no
    /// label is cut.
    @Test func defaultOptimizerIsFinetunesAndLabelsAreWhole() throws {
        let help = try CLITests().run(["finetune", "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let match = try #require(help.firstMatch(of: try Regex(#"--optimizer <optimizer> .*?default: (\w+)\)"#)), "\(help)")
        let finetuneDefault = try #require(match.output[1].substring.map(String.init))
        let shown = try #require(["adafactor": "Adafactor", "adamw": "AdamW"][finetuneDefault], "\(finetuneDefault)")
        let r = try CLITests().run(["bench", "--finetune", "--runs", "1", "--model", Fixtures.modelDirectory("t5-relu-tied").path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("fine-tuning step (fwd+bwd+\(shown)), ms"), "\(r.stdout)")
        #expect(r.stdout.contains("  \(shown) step, ms"), "\(r.stdout)")
        let benchHelp = try CLITests().run(["bench", "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(benchHelp.contains("default \(finetuneDefault), as t5 finetune's."), "\(benchHelp)")
        // Every label whole, the longest included.
        #expect(r.stdout.contains("fine-tuning tokens/s (8 x (64 + 32) per step)"), "\(r.stdout)")
        #expect(r.stdout.contains("gradient norm + clip (Trainer), not in step, ms "), "\(r.stdout)")
    }

    /// Every key ends with its unit, and the fastest and slowest run of a timed row (in ms) are named after
    /// the row without its unit: `greedy_b1_run_min_ms`, never `greedy_b1_tokens_per_s_min_ms`. For the
    /// inference, --embed and --finetune rows alike.
    @Test(arguments: [[], ["--embed"], ["--finetune"], ["--pretrain", "--input-length", "32"],
                      ["--distill", "--teacher", Fixtures.modelDirectory("t5-relu-tied").path]])
    func jsonKeysNameTheirUnits(mode: [String]) throws {
        let r = try CLITests().run(["bench", "--runs", "2", "--json", "--model", Fixtures.modelDirectory("t5-relu-tied").path] + mode)
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Double])
        let units = ["_ms", "_ms_per_token", "_tokens_per_s", "_mb"]
        func base(_ key: String) -> String? {
            units.sorted { $0.count > $1.count }.first { key.hasSuffix($0) }.map { String(key.dropLast($0.count)) }
        }
        let runKeys = object.keys.filter { $0.hasSuffix("_run_min_ms") || $0.hasSuffix("_run_max_ms") }
        let rows = object.keys.filter { !runKeys.contains($0) }
        for key in rows where !key.hasSuffix("_loss") {
            #expect(base(key) != nil, "\(key) names no unit")
            #expect(!key.contains("_min") && !key.contains("_max"), "\(key): a run spread not named _run_min_ms / _run_max_ms")
        }
        #expect(!runKeys.isEmpty)
        for key in runKeys {
            let row = String(key.dropLast("_run_min_ms".count))
            #expect(object[row + "_run_min_ms"] != nil && object[row + "_run_max_ms"] != nil, "\(key) without its pair")
            #expect(rows.contains { base($0) == row }, "\(key) names no row")
            #expect(!units.contains { row.hasSuffix($0) } && !row.hasSuffix("_per_s"), "\(key) keeps its row's unit")
            let low = object[row + "_run_min_ms"] ?? 0, high = object[row + "_run_max_ms"] ?? 0
            #expect(low <= high, "\(row): min \(low) > max \(high)")
        }
        let expected = mode == ["--finetune"] ? ["finetune_step_run_min_ms", "finetune_step_run_max_ms"]
            : mode.first == "--pretrain" ? ["pretrain_step_run_min_ms", "pretrain_corruption_run_max_ms"]
            : mode.first == "--distill" ? ["distill_step_run_min_ms", "distill_teacher_run_max_ms"]
            : mode == ["--embed"] ? ["embed_b32_run_min_ms", "embed_b32_run_max_ms"]
            : ["greedy_b1_run_min_ms", "greedy_b1_run_max_ms", "encoder_b1_run_min_ms", "greedy_b16_run_max_ms"]
        for key in expected {
            #expect(object[key] != nil, "\(key) missing in \(r.stdout)")
        }
    }

    /// The pretraining step on t5 pretrain's span-corrupted batch: inputs of exactly --input-length tokens,
    /// targets of the length compute_input_and_target_lengths gives (transformers' run_t5_mlm_flax.py; its
    /// values are in Tests/Fixtures/pretrain/span-corruption.json), counted in the tokens/s row.
    @Test func pretrainRowsAsJSONAndText() throws {
        let model = Fixtures.modelDirectory("t5-relu-tied").path
        let r = try CLITests().run(["bench", "--pretrain", "--runs", "1", "--json", "--model", model])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Double])
        for key in ["pretrain_tokens_per_s", "pretrain_step_ms", "pretrain_forward_backward_ms", "pretrain_optimizer_ms",
                    "pretrain_cpu_ms", "pretrain_corruption_ms", "pretrain_loss"] {
            #expect((object[key] ?? 0) > 0, "\(key) missing or not positive in \(r.stdout)")
        }
        let text = try CLITests().run(["bench", "--pretrain", "--runs", "1", "--noise-density", "0.15",
                                       "--mean-span-length", "3", "--model", model])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("pretraining step (fwd+bwd+Adafactor), ms"), "\(text.stdout)")
        #expect(text.stdout.contains("pretraining tokens/s (8 x (128 + \(try Self.referenceTargetLength(inputLength: 128))) per step)"), "\(text.stdout)")
        #expect(text.stdout.contains("span corruption of the batch, not in step, ms"), "\(text.stdout)")
    }

    /// The target length run_t5_mlm_flax.py's compute_input_and_target_lengths gives for `inputLength` at
    /// noise density 0.15 and mean span length 3, from the committed fixture (tools/make_pretrain_fixtures.py).
    static func referenceTargetLength(inputLength: Int) throws -> Int {
        let data = try Data(contentsOf: Fixtures.root.appendingPathComponent("pretrain/span-corruption.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try #require(object["lengths"] as? [[String: Any]])
        let match = try #require(cases.first {
            ($0["input_length"] as? Int) == inputLength && ($0["noise_density"] as? Double) == 0.15
                && ($0["mean_span_length"] as? Double) == 3
        }, "no reference case for input length \(inputLength)")
        return try #require(match["transformers_targets_length"] as? Int)
    }

    @Test func distillRowsAsJSON() throws {
        let teacher = Fixtures.modelDirectory("t5v11-gated-gelu").path
        let r = try CLITests().run(["bench", "--distill", "--teacher", teacher, "--runs", "1", "--json", "--model", teacher])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Double])
        for key in ["distill_tokens_per_s", "distill_step_ms", "distill_teacher_ms", "distill_forward_backward_ms",
                    "distill_optimizer_ms", "distill_cpu_ms", "distill_loss"] {
            #expect((object[key] ?? 0) > 0, "\(key) missing or not positive in \(r.stdout)")
        }
    }

    /// Each bad combination is refused in one line before anything is measured: at parse time (status 64)
    /// when the flags alone are wrong, status 1 when the teacher's vocabulary is.
    @Test(arguments: [
        (["--teacher", "T"], "--teacher names the distillation step's teacher: add --distill"),
        (["--distill"], "--distill needs --teacher DIR"),
        (["--pretrain", "--finetune"], "--finetune, --pretrain and --distill each measure their own step: give one"),
        (["--distill", "--teacher", "T", "--pretrain"], "--finetune, --pretrain and --distill each measure their own step: give one"),
        (["--input-length", "64"], "--input-length shapes the pretraining batch: add --pretrain"),
        (["--finetune", "--noise-density", "0.2"], "--noise-density shapes the pretraining batch: add --pretrain"),
        (["--pretrain", "--noise-density", "1.5"], "--noise-density: must be in (0, 1), got 1.5"),
        (["--pretrain", "--input-length", "2"], "--input-length: must be at least 3"),
        (["--pretrain", "--weights", "bf16"], "--pretrain trains fp32 weights: drop --weights"),
        (["--distill", "--teacher", "T", "--only", "encoder"], "--only selects inference rows: drop it with --distill"),
    ])
    func badCombinationsRefusedAtParseTime(flags: [String], message: String) throws {
        let model = Fixtures.modelDirectory("t5-relu-tied").path
        let arguments = ["bench", "--model", model] + flags
        try CLITests().expectFailure(arguments, message)
        #expect(try CLITests().run(arguments).status == 64, "\(flags)")
    }

    @Test func teacherWithAnotherVocabularyRefused() throws {
        let arguments = ["bench", "--distill", "--teacher", Fixtures.modelDirectory("t5v11-gated-gelu").path,
                         "--model", Fixtures.modelDirectory("t5-relu-tied").path, "--runs", "1"]
        try CLITests().expectFailure(arguments, "t5: invalid value for --teacher: \(Fixtures.modelDirectory("t5v11-gated-gelu").path) cannot teach --model: the student's vocab_size 512 differs from the teacher's 484")
        let r = try CLITests().run(arguments)
        #expect(r.status == 1 && r.stdout.isEmpty, "\(r.status) \(r.stdout)")
    }

    @Test func optimizerNeedsFinetune() throws {
        try CLITests().expectFailure(
            ["bench", "--optimizer", "adafactor", "--model", Fixtures.modelDirectory("t5-relu-tied").path], "--finetune")
    }

    @Test func finetuneRefusesLowPrecisionWeights() throws {
        try CLITests().expectFailure(
            ["bench", "--finetune", "--weights", "bf16", "--model", Fixtures.modelDirectory("t5-relu-tied").path], "--finetune")
    }
}
