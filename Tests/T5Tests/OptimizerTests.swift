import Foundation
import Testing
@testable import T5

// Reference numbers come from tools/make_optimizer_fixtures.py (torch.optim.AdamW,
// transformers' Adafactor, clip_grad_norm_ and transformers' schedules), never from this code.

/// Tests/Fixtures/optimizers/optimizers.json.
struct OptimizerFixture: Decodable {
    struct Step: Decodable {
        let lr: Double?
        let grad_norm: Double?
        let params: [String: [Float]]
    }
    struct Schedule: Decodable {
        let kind: String
        let warmup: Int
        let total: Int
    }
    struct Case: Decodable {
        let name: String
        let optimizer: String
        let options: [String: OptionValue]
        let schedule: Schedule?
        let max_grad_norm: Double?
        let steps: [Step]
    }
    /// A number, null, a boolean or a pair of numbers (betas).
    enum OptionValue: Decodable {
        case number(Double), flag(Bool), pair([Double]), none
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .none }
            else if let b = try? c.decode(Bool.self) { self = .flag(b) }
            else if let d = try? c.decode(Double.self) { self = .number(d) }
            else { self = .pair(try c.decode([Double].self)) }
        }
        var number: Double? { if case .number(let d) = self { return d } else { return nil } }
        var flag: Bool? { if case .flag(let b) = self { return b } else { return nil } }
    }
    struct Multipliers: Decodable {
        let schedule: String
        let warmup: Int
        let total: Int
        let steps: [Int]
        let multipliers: [Double]
    }
    let shapes: [String: [Int]]
    let initial: [String: [Float]]
    let gradients: [[String: [Float]]]
    let cases: [Case]
    let schedules: [Multipliers]

    static let shared: OptimizerFixture? = try? JSONDecoder().decode(
        OptimizerFixture.self, from: Data(contentsOf: Fixtures.root.appendingPathComponent("optimizers/optimizers.json")))
}

/// ‖a − b‖ / ‖b‖ over all elements.
private func updateDistance(_ a: [Float], _ b: [Float]) -> Double {
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) {
        num += Double(x - y) * Double(x - y)
        den += Double(y) * Double(y)
    }
    return (num / max(den, 1e-300)).squareRoot()
}

extension OptimizerFixture.Case {
    var choice: OptimizerChoice {
        if optimizer == "adamw" {
            var o = AdamW.Options()
            if let lr = options["lr"]?.number { o.learningRate = lr }
            if let wd = options["weight_decay"]?.number { o.weightDecay = wd }
            if let eps = options["eps"]?.number { o.eps = eps }
            if case .pair(let betas)? = options["betas"] { o.beta1 = betas[0]; o.beta2 = betas[1] }
            return .adamW(o)
        }
        var o = Adafactor.Options()
        o.relativeStep = options["relative_step"]?.flag ?? true
        o.scaleParameter = options["scale_parameter"]?.flag ?? true
        o.warmupInit = options["warmup_init"]?.flag ?? false
        if let lr = options["lr"]?.number { o.learningRate = lr }
        o.beta1 = options["beta1"]?.number
        if let wd = options["weight_decay"]?.number { o.weightDecay = wd }
        if let clip = options["clip_threshold"]?.number { o.clipThreshold = clip }
        return .adafactor(o)
    }
}

@Suite struct OptimizerTests {
    /// Runs one fixture case through our optimizer, schedule and clipping in the Trainer's order and
    /// returns, per step, the largest relative L2 distance of any tensor's update (parameter minus
    /// initial) from PyTorch's.
    func run(_ c: OptimizerFixture.Case, _ f: OptimizerFixture) throws -> [Double] {
        let names = f.shapes.keys.sorted()
        // Some cases start from the fixture's parameters scaled down (float32 products, as numpy's).
        let scale = Float(c.options["initial_scale"]?.number ?? 1)
        var initial = [String: [Float]]()
        for name in names { initial[name] = try #require(f.initial[name]).map { $0 * scale } }
        var params = [String: Tensor]()
        for name in names { params[name] = Tensor(shape: try #require(f.shapes[name]), values: try #require(initial[name])) }
        let optimizer = c.choice.make()
        let schedule = c.schedule.map {
            LearningRateSchedule(LearningRateSchedule.Kind(rawValue: $0.kind == "inverse_sqrt" ? "inverse-sqrt" : $0.kind) ?? .constant,
                                 warmupSteps: $0.warmup, totalSteps: $0.total)
        }
        var worst = [Double]()
        for (k, step) in c.steps.enumerated() {
            var grads = [String: Tensor]()
            for name in names { grads[name] = Tensor(shape: try #require(f.shapes[name]), values: try #require(f.gradients[k][name])) }
            if let maxNorm = c.max_grad_norm {
                let norm = GradientClipping.clip(names.compactMap { grads[$0] }, maxNorm: maxNorm)
                let expected = try #require(step.grad_norm)
                #expect(abs(norm - expected) <= 1e-5 * expected, "\(c.name) step \(k): grad norm \(norm) vs \(expected)")
            }
            let base = c.choice.baseLearningRate ?? 0
            let lr = schedule?.learningRate(base: base, step: k) ?? base
            if let expectedLR = step.lr {
                #expect(abs(lr - expectedLR) <= 1e-12 * max(1, expectedLR), "\(c.name) step \(k): lr \(lr) vs \(expectedLR)")
            }
            optimizer.step(parameters: params, gradients: grads, learningRate: lr)
            var stepWorst = 0.0
            for name in names {
                let start = try #require(initial[name])
                let ours = zip(try #require(params[name]).array, start).map { $0 - $1 }
                let theirs = zip(try #require(step.params[name]), start).map { $0 - $1 }
                let d = updateDistance(ours, theirs)
                #expect(d <= 1e-4, "\(c.name) step \(k + 1) \(name): update differs from PyTorch by relative L2 \(d)")
                stepWorst = max(stepWorst, d)
            }
            worst.append(stepWorst)
        }
        #expect(optimizer.stepCount == c.steps.count)
        return worst
    }

    @Test func everyCaseMatchesPyTorch() throws {
        let f = try #require(OptimizerFixture.shared, "Tests/Fixtures/optimizers/optimizers.json missing; run tools/make_optimizer_fixtures.py")
        #expect(f.cases.count >= 14)
        for c in f.cases {
            let worst = try run(c, f)
            print("optimizer parity \(c.name): max relative L2 of the update per step \(worst.map { String(format: "%.2e", $0) })")
        }
    }

    @Test func schedulesMatchTransformers() throws {
        let f = try #require(OptimizerFixture.shared)
        for s in f.schedules {
            let kind = try #require(LearningRateSchedule.Kind(rawValue: s.schedule == "inverse_sqrt" ? "inverse-sqrt" : s.schedule))
            let schedule = LearningRateSchedule(kind, warmupSteps: s.warmup, totalSteps: s.total)
            for (step, expected) in zip(s.steps, s.multipliers) {
                let m = schedule.multiplier(step: step)
                #expect(abs(m - expected) <= 1e-12, "\(s.schedule) warmup \(s.warmup) step \(step): \(m) vs \(expected)")
            }
        }
    }

    /// Saving the moments mid-run and restoring them into a fresh optimizer continues bit-identically.
    @Test(arguments: ["adamw_lr1e-3_wd0.01", "adafactor_fixed_lr", "adafactor_fixed_lr_scaled_beta1_wd", "adafactor_relative_step"])
    func restoredStateContinuesIdentically(caseName: String) throws {
        let f = try #require(OptimizerFixture.shared)
        let c = try #require(f.cases.first { $0.name == caseName })
        let names = f.shapes.keys.sorted()
        func fresh() throws -> [String: Tensor] {
            var params = [String: Tensor]()
            for name in names { params[name] = Tensor(shape: try #require(f.shapes[name]), values: try #require(f.initial[name])) }
            return params
        }
        func grads(_ k: Int) throws -> [String: Tensor] {
            var g = [String: Tensor]()
            for name in names { g[name] = Tensor(shape: try #require(f.shapes[name]), values: try #require(f.gradients[k][name])) }
            return g
        }
        let lr = c.choice.baseLearningRate ?? 0
        let straight = try fresh(), split = try fresh()
        let a = c.choice.make()
        for k in 0..<5 { a.step(parameters: straight, gradients: try grads(k), learningRate: lr) }

        let b = c.choice.make()
        for k in 0..<2 { b.step(parameters: split, gradients: try grads(k), learningRate: lr) }
        let saved = b.stateTensors().mapValues { $0.copy() }
        let resumed = c.choice.make()
        try resumed.restore(step: b.stepCount, tensors: saved, shapes: f.shapes, path: "state")
        for k in 2..<5 { resumed.step(parameters: split, gradients: try grads(k), learningRate: lr) }
        for name in names {
            #expect(try #require(straight[name]).array == (try #require(split[name])).array, "\(caseName) \(name)")
        }
    }

    @Test func restoreReportsMissingAndMisshapenMoments() throws {
        let shapes = ["w": [3, 2], "n": [2]]
        let a = AdamW()
        #expect(throws: T5Error.corruptCheckpoint(path: "opt", reason: "optimizer state lacks n.exp_avg")) {
            try a.restore(step: 1, tensors: ["w.exp_avg": Tensor(zeros: [3, 2]), "w.exp_avg_sq": Tensor(zeros: [3, 2])], shapes: ["n": [2]], path: "opt")
        }
        let f = Adafactor()
        #expect(throws: T5Error.corruptCheckpoint(path: "opt", reason: "optimizer state w.exp_avg_sq_row has shape [2], expected [3]")) {
            try f.restore(step: 1, tensors: ["w.exp_avg_sq_row": Tensor(zeros: [2]), "w.exp_avg_sq_col": Tensor(zeros: [2])], shapes: ["w": shapes["w"] ?? []], path: "opt")
        }
        // Step 0 has no state to restore.
        try a.restore(step: 0, tensors: [:], shapes: shapes, path: "opt")
        #expect(a.stepCount == 0)
    }

    @Test func frozenTensorsAreNeverTouched() throws {
        let p = ["a": Tensor(shape: [2, 2], values: [1, 2, 3, 4]), "frozen": Tensor(shape: [2], values: [5, 6])]
        for choice in [OptimizerChoice.adamW(.init()), .adafactor(.init())] {
            let o = choice.make()
            o.step(parameters: p, gradients: ["a": Tensor(shape: [2, 2], values: [0.1, 0.2, 0.3, 0.4])], learningRate: 1e-2)
            #expect(p["frozen"]?.array == [5, 6])
            #expect(o.stateTensors().keys.allSatisfy { $0.hasPrefix("a.") })
        }
    }

    @Test func clippingScalesOnlyAboveTheThreshold() {
        let g = [Tensor(shape: [2], values: [3, 0]), Tensor(shape: [1], values: [4])]
        #expect(GradientClipping.clip(g, maxNorm: 10) == 5)
        #expect(g[0].array == [3, 0])
        #expect(GradientClipping.clip(g, maxNorm: 0) == 5)
        #expect(g[1].array == [4])
        #expect(GradientClipping.clip(g, maxNorm: 1) == 5)
        #expect(abs(GradientClipping.globalNorm(g) - 1) < 1e-6)
    }

    @Test func adafactorRejectsTransformersForbiddenCombinations() {
        #expect(throws: T5Error.self) { try Adafactor.Options(relativeStep: false, warmupInit: true).validate() }
        #expect(throws: Never.self) { try Adafactor.Options.fixed(learningRate: 1e-3).validate() }
    }
}
