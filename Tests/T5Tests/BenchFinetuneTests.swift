import Foundation
import Testing
@testable import T5

/// `t5 bench --finetune` on a fixture model: the JSON keys scripts read (AdamW and Adafactor), the optimizer's
/// name in the text rows, and the one-line refusals (fp32 only; --optimizer only with --finetune).
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
    @Test(arguments: [[], ["--embed"], ["--finetune"]])
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
        for key in rows where key != "finetune_loss" {
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
            : mode == ["--embed"] ? ["embed_b32_run_min_ms", "embed_b32_run_max_ms"]
            : ["greedy_b1_run_min_ms", "greedy_b1_run_max_ms", "encoder_b1_run_min_ms", "greedy_b16_run_max_ms"]
        for key in expected {
            #expect(object[key] != nil, "\(key) missing in \(r.stdout)")
        }
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
