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

    /// Without --optimizer, the step is t5 finetune's default optimizer (Adafactor), and no label is cut.
    @Test func defaultOptimizerIsFinetunesAndLabelsAreWhole() throws {
        let r = try CLITests().run(["bench", "--finetune", "--runs", "1", "--model", Fixtures.modelDirectory("t5-relu-tied").path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("fine-tuning tokens/s (8 x (64 + 32) per step)"), "\(r.stdout)")
        #expect(r.stdout.contains("gradient norm + clip (Trainer), not in step, ms"), "\(r.stdout)")
        #expect(r.stdout.contains("Adafactor step, ms"), "\(r.stdout)")
    }

    /// Run spreads are named after the row without its unit: no `..._tokens_per_s_max_ms`.
    @Test func jsonKeysNameTheirUnits() throws {
        let r = try CLITests().run(["bench", "--runs", "2", "--json", "--model", Fixtures.modelDirectory("t5-relu-tied").path])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Double])
        for key in ["greedy_b1_run_min_ms", "greedy_b1_run_max_ms", "encoder_b1_run_min_ms", "greedy_b16_run_max_ms", "greedy_b1_tokens_per_s"] {
            #expect(object[key] != nil, "\(key) missing in \(r.stdout)")
        }
        #expect(!object.keys.contains { $0.contains("_per_s_") || $0.contains("_ms_m") }, "\(object.keys.sorted())")
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
