import Foundation
import Testing
@testable import T5

/// `t5 bench --finetune` on a fixture model: the JSON keys scripts read, and the fp32-only refusal.
@Suite struct BenchFinetuneTests {
    @Test func finetuneRowsAsJSON() throws {
        let cli = CLITests()
        let r = try cli.run(["bench", "--finetune", "--json", "--runs", "1", "--model", Fixtures.modelDirectory("t5-relu-tied").path])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Double])
        for key in ["finetune_tokens_per_s", "finetune_step_ms", "finetune_forward_backward_ms", "finetune_optimizer_ms", "finetune_cpu_ms"] {
            #expect((object[key] ?? 0) > 0, "\(key) missing or not positive in \(r.stdout)")
        }
        let loss = try #require(object["finetune_loss"])
        #expect(loss.isFinite && loss > 0)
    }

    @Test func finetuneRefusesLowPrecisionWeights() throws {
        try CLITests().expectFailure(
            ["bench", "--finetune", "--weights", "bf16", "--model", Fixtures.modelDirectory("t5-relu-tied").path], "--finetune")
    }
}
