import Foundation

/// transformers.optimization.Adafactor (transformers 5.24, itself from fairseq), step for step.
///
/// Per tensor and step t (all tensor math in fp32, scalars in fp64 as Python computes them):
///
///     RMS      = ‖param‖₂ / √n                                  (before the update)
///     lr       = relative_step ? min(warmup_init ? 1e-6·t : 1e-2, 1/√t) : lr
///     lr      *= scale_parameter ? max(eps₂, RMS) : 1
///     β₂ₜ      = 1 − t^decay_rate
///     g²       = grad² + eps₁
///     factored (rank ≥ 2):  row = β₂ₜ·row + (1−β₂ₜ)·mean_cols(g²);  col = β₂ₜ·col + (1−β₂ₜ)·mean_rows(g²)
///                           update = rsqrt(row / mean(row)) ⊗ rsqrt(col) · grad        (`_approx_sq_grad`)
///     otherwise:            v = β₂ₜ·v + (1−β₂ₜ)·g²;  update = rsqrt(v) · grad
///     update  /= max(RMS(update) / clip_threshold, 1)
///     update  *= lr
///     beta1:    exp_avg = β₁·exp_avg + (1−β₁)·update;  update = exp_avg
///     param   -= weight_decay·lr·param  (before subtracting the update)
///     param   -= update
///
/// T5's fine-tuning recipe is the fixed-rate mode `Adafactor(lr=1e-3, scale_parameter=False,
/// relative_step=False, warmup_init=False)`; the defaults are the relative-step mode.
public final class Adafactor: Optimizer {
    /// Hyperparameters with transformers' defaults (the relative-step mode).
    public struct Options: Sendable, Equatable {
        /// `lr`: the external rate, used only when `relativeStep` is false (transformers refuses both).
        public var learningRate: Double = 1e-3
        /// `eps[0]` (1e-30), added to the squared gradient.
        public var eps1: Double = 1e-30
        /// `eps[1]` (1e-3), the smallest parameter scale.
        public var eps2: Double = 1e-3
        /// `clip_threshold` (1.0): the largest RMS of an update before the learning rate.
        public var clipThreshold: Double = 1.0
        /// `decay_rate` (−0.8): β₂ₜ = 1 − t^decay_rate.
        public var decayRate: Double = -0.8
        /// `beta1` (None): a first moment only when set.
        public var beta1: Double? = nil
        /// `weight_decay` (0).
        public var weightDecay: Double = 0
        /// `scale_parameter` (true): multiply the rate by the tensor's RMS.
        public var scaleParameter = true
        /// `relative_step` (true): the rate is min(1e-2, 1/√t) (see `warmupInit`), not `learningRate`.
        public var relativeStep = true
        /// `warmup_init` (false): with `relativeStep`, the rate starts at 1e-6·t.
        public var warmupInit = false

        public init(
            learningRate: Double = 1e-3, eps1: Double = 1e-30, eps2: Double = 1e-3, clipThreshold: Double = 1.0,
            decayRate: Double = -0.8, beta1: Double? = nil, weightDecay: Double = 0,
            scaleParameter: Bool = true, relativeStep: Bool = true, warmupInit: Bool = false
        ) {
            self.learningRate = learningRate
            self.eps1 = eps1
            self.eps2 = eps2
            self.clipThreshold = clipThreshold
            self.decayRate = decayRate
            self.beta1 = beta1
            self.weightDecay = weightDecay
            self.scaleParameter = scaleParameter
            self.relativeStep = relativeStep
            self.warmupInit = warmupInit
        }

        /// T5's fine-tuning setting, `Adafactor(lr=lr, scale_parameter=False, relative_step=False, warmup_init=False)`.
        public static func fixed(learningRate: Double) -> Options {
            Options(learningRate: learningRate, scaleParameter: false, relativeStep: false, warmupInit: false)
        }

        /// Checks the combinations transformers refuses in `Adafactor.__init__`.
        public func validate() throws(T5Error) {
            if warmupInit && !relativeStep {
                throw .invalidOption(name: "adafactor", reason: "warmup_init requires relative_step")
            }
            if !relativeStep && !(learningRate > 0) {
                throw .invalidOption(name: "--lr", reason: "must be positive, got \(learningRate)")
            }
        }
    }

    /// The second-moment state of one tensor.
    private enum SecondMoment {
        /// Rank ≥ 2: running means of g² over the last dimension (`row`, shape[:-1]) and over the
        /// second-to-last (`col`, shape[:-2] + shape[-1:]).
        case factored(row: Tensor, col: Tensor)
        /// Rank < 2: a full running mean of g².
        case full(Tensor)
    }

    public let options: Options
    public private(set) var stepCount = 0
    public private(set) var lastLearningRate: Double = 0
    private var secondMoments = [String: SecondMoment]()
    private var firstMoments = [String: Tensor]()

    public init(_ options: Options = .init()) {
        self.options = options
    }

    public var summary: String {
        let lr = options.relativeStep ? "None" : "\(options.learningRate)"
        let beta1 = options.beta1.map { "\($0)" } ?? "None"
        return "Adafactor(lr=\(lr), eps=(\(options.eps1), \(options.eps2)), clip_threshold=\(options.clipThreshold), "
            + "decay_rate=\(options.decayRate), beta1=\(beta1), weight_decay=\(options.weightDecay), "
            + "scale_parameter=\(options.scaleParameter ? "True" : "False"), relative_step=\(options.relativeStep ? "True" : "False"), "
            + "warmup_init=\(options.warmupInit ? "True" : "False"))"
    }

    /// `_get_lr` before the parameter scale: the relative step size, or the external rate.
    func relativeStepSize(externalRate: Double) -> Double {
        guard options.relativeStep else { return externalRate }
        let t = Double(stepCount)
        let minStep = options.warmupInit ? 1e-6 * t : 1e-2
        return min(minStep, 1 / t.squareRoot())
    }

    private static func factoredShapes(_ shape: [Int]) -> (row: [Int], col: [Int]) {
        (Array(shape.dropLast()), Array(shape.dropLast(2)) + [shape[shape.count - 1]])
    }

    public func step(parameters: [String: Tensor], gradients: [String: Tensor], learningRate: Double) {
        stepCount += 1
        let keys = gradients.keys.sorted()
        for key in keys where secondMoments[key] == nil {
            guard let g = gradients[key] else { continue }
            if g.shape.count >= 2 {
                let shapes = Self.factoredShapes(g.shape)
                secondMoments[key] = .factored(row: Tensor(zeros: shapes.row), col: Tensor(zeros: shapes.col))
            } else {
                secondMoments[key] = .full(Tensor(zeros: g.shape))
            }
            if options.beta1 != nil { firstMoments[key] = Tensor(zeros: g.shape) }
        }
        let relativeStep = relativeStepSize(externalRate: learningRate)
        lastLearningRate = relativeStep
        let beta2t = 1 - pow(Double(stepCount), options.decayRate)

        forEachConcurrently(keys) { key in
            guard let p = parameters[key], let g = gradients[key], let moment = secondMoments[key] else { return }
            precondition(p.shape == g.shape, "gradient of \(key) has shape \(g.shape), parameter \(p.shape)")
            update(p, gradient: g, moment: moment, firstMoment: firstMoments[key], relativeStep: relativeStep, beta2t: beta2t)
        }
    }

    /// One tensor's step. The update is never materialized: its factor per element (rsqrt of the
    /// second-moment estimate) is recomputed in each pass, bit-identically, so the step needs no
    /// tensor-sized scratch memory.
    private func update(_ p: Tensor, gradient g: Tensor, moment: SecondMoment, firstMoment: Tensor?, relativeStep: Double, beta2t: Double) {
        let n = p.count
        let pp = p.pointer, gp = g.pointer
        // state["RMS"] = _rms(p) and lr = param_scale · rel_step_sz: a fp32 tensor times a Python float.
        var lr = Float(relativeStep)
        if options.scaleParameter {
            let rms = Float(rootMeanSquare(pp, n))
            lr = max(Float(options.eps2), rms) * Float(relativeStep)
        }
        let decay = Float(beta2t), keep = Float(1 - beta2t)
        let eps1 = Float(options.eps1)

        // Rows of the tensor viewed as (rows, cols) and, per row, the factor of each column:
        // factored, factor(r, c) = rowFactor[r] · colFactor[matrix(r), c]; full, factor(i) = rsqrt(v[i]).
        let cols = g.shape.count >= 2 ? g.shape[g.shape.count - 1] : n
        let rows = n / max(cols, 1)
        var rowFactor = [Float](repeating: 1, count: rows)
        var colFactor: [Float]
        var rowsPerMatrix = rows
        switch moment {
        case let .factored(row, col):
            rowsPerMatrix = g.shape[g.shape.count - 2]
            let matrices = rows / rowsPerMatrix
            let rp = row.pointer, cp = col.pointer
            // exp_avg_sq_row ← β₂ₜ·row + (1−β₂ₜ)·mean over the last dim of (g² + eps₁); col likewise
            // over the second-to-last dim.
            var colSums = [Double](repeating: 0, count: matrices * cols)
            for r in 0..<rows {
                let gr = gp + r * cols
                let colBase = (r / rowsPerMatrix) * cols
                var sum = 0.0
                for c in 0..<cols {
                    let x = Double(gr[c] * gr[c] + eps1)
                    sum += x
                    colSums[colBase + c] += x
                }
                rp[r] = rp[r] * decay + keep * Float(sum / Double(cols))
            }
            for j in 0..<(matrices * cols) {
                cp[j] = cp[j] * decay + keep * Float(colSums[j] / Double(rowsPerMatrix))
            }
            // _approx_sq_grad: rsqrt(row / row.mean(-1)) ⊗ rsqrt(col).
            for m in 0..<matrices {
                var sum = 0.0
                for r in 0..<rowsPerMatrix { sum += Double(rp[m * rowsPerMatrix + r]) }
                let mean = Float(sum / Double(rowsPerMatrix))
                for r in 0..<rowsPerMatrix {
                    rowFactor[m * rowsPerMatrix + r] = 1 / (rp[m * rowsPerMatrix + r] / mean).squareRoot()
                }
            }
            colFactor = (0..<(matrices * cols)).map { 1 / cp[$0].squareRoot() }
        case let .full(v):
            let vp = v.pointer
            for i in 0..<n { vp[i] = vp[i] * decay + keep * (gp[i] * gp[i] + eps1) }
            colFactor = (0..<n).map { 1 / vp[$0].squareRoot() }
        }

        colFactor.withUnsafeBufferPointer { colFactor in
            // update = (rowFactor ⊗ colFactor) · grad, in torch's order: the factor product, then the gradient.
            @inline(__always) func forEachUpdate(_ body: (Int, Float) -> Void) {
                for r in 0..<rows {
                    let rf = rowFactor[r]
                    let colBase = (r / rowsPerMatrix) * cols
                    let base = r * cols
                    for c in 0..<cols { body(base + c, (rf * colFactor[colBase + c]) * gp[base + c]) }
                }
            }
            // update /= max(RMS(update) / clip_threshold, 1)
            var sumSquares = 0.0
            forEachUpdate { _, u in sumSquares += Double(u) * Double(u) }
            let updateRMS = Float((sumSquares / Double(n)).squareRoot())
            let divisor = max(updateRMS / Float(options.clipThreshold), 1)
            let weightDecay = Float(-options.weightDecay) * lr
            let applyDecay = options.weightDecay != 0

            if let firstMoment, let beta1 = options.beta1 {
                let mp = firstMoment.pointer
                let b1 = Float(beta1), oneMinusB1 = Float(1 - beta1)
                forEachUpdate { i, u in
                    mp[i] = mp[i] * b1 + oneMinusB1 * ((u / divisor) * lr)
                    if applyDecay { pp[i] += weightDecay * pp[i] }
                    pp[i] -= mp[i]
                }
            } else {
                forEachUpdate { i, u in
                    if applyDecay { pp[i] += weightDecay * pp[i] }
                    pp[i] -= (u / divisor) * lr
                }
            }
        }
    }

    /// `_rms`: ‖x‖₂ / √n, accumulated in fp64.
    private func rootMeanSquare(_ x: UnsafeMutablePointer<Float>, _ n: Int) -> Double {
        var sum = 0.0
        for i in 0..<n { sum += Double(x[i]) * Double(x[i]) }
        return (sum / Double(max(n, 1))).squareRoot()
    }

    public func stateTensors() -> [String: Tensor] {
        var out = [String: Tensor]()
        for (key, moment) in secondMoments {
            switch moment {
            case let .factored(row, col):
                out["\(key).exp_avg_sq_row"] = row
                out["\(key).exp_avg_sq_col"] = col
            case let .full(v):
                out["\(key).exp_avg_sq"] = v
            }
        }
        for (key, m) in firstMoments { out["\(key).exp_avg"] = m }
        return out
    }

    public func restore(step: Int, tensors: [String: Tensor], shapes: [String: [Int]], path: String) throws(T5Error) {
        var second = [String: SecondMoment](), first = [String: Tensor]()
        if step > 0 {
            for (key, shape) in shapes {
                if shape.count >= 2 {
                    let s = Self.factoredShapes(shape)
                    second[key] = .factored(
                        row: try restoredMoment("exp_avg_sq_row", of: key, shape: s.row, in: tensors, path: path),
                        col: try restoredMoment("exp_avg_sq_col", of: key, shape: s.col, in: tensors, path: path))
                } else {
                    second[key] = .full(try restoredMoment("exp_avg_sq", of: key, shape: shape, in: tensors, path: path))
                }
                if options.beta1 != nil {
                    first[key] = try restoredMoment("exp_avg", of: key, shape: shape, in: tensors, path: path)
                }
            }
        }
        secondMoments = second
        firstMoments = first
        stepCount = step
    }
}
