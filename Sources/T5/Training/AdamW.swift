import Foundation

/// torch.optim.AdamW: Adam with decoupled weight decay (Loshchilov & Hutter), computed as torch's
/// single-tensor CPU loop (`torch/optim/adam.py`, `_single_tensor_adam` with
/// `decoupled_weight_decay=True`), operation for operation in fp32 with the scalar factors in fp64:
///
///     param    *= 1 - lr·weight_decay
///     exp_avg   = exp_avg + (1 - β1)·(grad - exp_avg)          (lerp)
///     exp_avg_sq = β2·exp_avg_sq + (1 - β2)·grad²
///     denom    = sqrt(exp_avg_sq) / sqrt(1 - β2^t) + eps
///     param    -= lr / (1 - β1^t) · exp_avg / denom
public final class AdamW: Optimizer {
    /// Hyperparameters, with torch's defaults.
    public struct Options: Sendable, Equatable {
        /// `lr` (1e-3): the base rate a schedule multiplies.
        public var learningRate: Double = 1e-3
        /// `betas[0]` (0.9).
        public var beta1: Double = 0.9
        /// `betas[1]` (0.999).
        public var beta2: Double = 0.999
        /// `eps` (1e-8).
        public var eps: Double = 1e-8
        /// `weight_decay` (1e-2), applied to every trainable tensor (torch's AdamW on `model.parameters()`).
        public var weightDecay: Double = 1e-2

        public init(learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 1e-2) {
            self.learningRate = learningRate
            self.beta1 = beta1
            self.beta2 = beta2
            self.eps = eps
            self.weightDecay = weightDecay
        }
    }

    public let options: Options
    public private(set) var stepCount = 0
    public private(set) var lastLearningRate: Double = 0
    /// First and second moments of each trainable tensor, created at its first step.
    private var expAvg = [String: Tensor]()
    private var expAvgSq = [String: Tensor]()

    public init(_ options: Options = .init()) {
        self.options = options
    }

    public var summary: String {
        "AdamW(lr=\(options.learningRate), betas=(\(options.beta1), \(options.beta2)), eps=\(options.eps), weight_decay=\(options.weightDecay))"
    }

    public func step(parameters: [String: Tensor], gradients: [String: Tensor], learningRate lr: Double) {
        stepCount += 1
        lastLearningRate = lr
        let keys = gradients.keys.sorted()
        for key in keys where expAvg[key] == nil {
            guard let g = gradients[key] else { continue }
            expAvg[key] = Tensor(zeros: g.shape)
            expAvgSq[key] = Tensor(zeros: g.shape)
        }
        // torch's step count is a float tensor read back as a Python float: the powers are fp64.
        let t = Double(stepCount)
        let decay = Float(1 - lr * options.weightDecay)
        let beta1Weight = Float(1 - options.beta1)
        let beta2 = Float(options.beta2)
        let oneMinusBeta2 = Float(1 - options.beta2)
        let biasCorrection1 = 1 - pow(options.beta1, t)
        let biasCorrection2Sqrt = Float((1 - pow(options.beta2, t)).squareRoot())
        let negativeStepSize = Float(-(lr / biasCorrection1))
        let eps = Float(options.eps)
        let constants = StepConstants(
            decay: options.weightDecay != 0 ? decay : nil, beta1Weight: beta1Weight, beta2: beta2,
            oneMinusBeta2: oneMinusBeta2, biasCorrection2Sqrt: biasCorrection2Sqrt,
            negativeStepSize: negativeStepSize, eps: eps)

        for key in keys {
            if let p = parameters[key], let g = gradients[key] {
                precondition(p.shape == g.shape, "gradient of \(key) has shape \(g.shape), parameter \(p.shape)")
            }
        }
        let counts = gradients.mapValues(\.count)
        forEachRangeConcurrently(keys, counts: counts) { key, range in
            guard let p = parameters[key], let g = gradients[key], let m = expAvg[key], let v = expAvgSq[key] else { return }
            let start = range.lowerBound
            Self.update(
                p.pointer + start, gradient: g.pointer + start, expAvg: m.pointer + start, expAvgSq: v.pointer + start,
                count: range.count, constants: constants)
        }
    }

    /// The per-step factors of `update`, in fp32.
    struct StepConstants {
        /// 1 − lr·weight_decay, or nil without weight decay.
        var decay: Float?
        var beta1Weight: Float
        var beta2: Float
        var oneMinusBeta2: Float
        var biasCorrection2Sqrt: Float
        var negativeStepSize: Float
        var eps: Float
    }

    /// One tensor's update, element by element as `step` documents. Sixteen lanes at a time: the vector
    /// loop does the same fp32 operations in the same order as the scalar tail (no fused multiply-add,
    /// correctly rounded sqrt and division), so its results are bit-identical to the scalar loop's.
    /// A scalar loop is bound by the latency of sqrt and division (tools/bench/RESULTS.md, "Kernel choices");
    /// this one is bound by memory bandwidth.
    static func update(
        _ pp: UnsafeMutablePointer<Float>, gradient gp: UnsafePointer<Float>, expAvg mp: UnsafeMutablePointer<Float>,
        expAvgSq vp: UnsafeMutablePointer<Float>, count n: Int, constants c: StepConstants
    ) {
        typealias V = SIMD16<Float>
        let width = V.scalarCount
        let decay = c.decay ?? 1, applyDecay = c.decay != nil
        let beta1Weight = V(repeating: c.beta1Weight), beta2 = V(repeating: c.beta2)
        let oneMinusBeta2 = V(repeating: c.oneMinusBeta2), biasCorrection2Sqrt = V(repeating: c.biasCorrection2Sqrt)
        let negativeStepSize = V(repeating: c.negativeStepSize), eps = V(repeating: c.eps)
        func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }
        var i = 0
        while i + width <= n {
            var pv = load(pp + i)
            if applyDecay { pv = pv * decay }
            let gv = load(gp + i)
            var mv = load(mp + i)
            mv = mv + beta1Weight * (gv - mv)
            var vv = load(vp + i)
            vv = vv * beta2 + oneMinusBeta2 * (gv * gv)
            let denom = vv.squareRoot() / biasCorrection2Sqrt + eps
            pv = pv + negativeStepSize * (mv / denom)
            store(pv, pp + i)
            store(mv, mp + i)
            store(vv, vp + i)
            i += width
        }
        while i < n {
            if applyDecay { pp[i] *= decay }
            let gi = gp[i]
            // torch.lerp with weight < 0.5: start + weight·(end − start).
            mp[i] += c.beta1Weight * (gi - mp[i])
            vp[i] = vp[i] * c.beta2 + c.oneMinusBeta2 * (gi * gi)
            let denom = vp[i].squareRoot() / c.biasCorrection2Sqrt + c.eps
            pp[i] += c.negativeStepSize * (mp[i] / denom)
            i += 1
        }
    }

    public func stateTensors() -> [String: Tensor] {
        var out = [String: Tensor]()
        for (key, m) in expAvg { out["\(key).exp_avg"] = m }
        for (key, v) in expAvgSq { out["\(key).exp_avg_sq"] = v }
        return out
    }

    public func restore(step: Int, tensors: [String: Tensor], shapes: [String: [Int]], path: String) throws(T5Error) {
        var m = [String: Tensor](), v = [String: Tensor]()
        if step > 0 {
            for (key, shape) in shapes {
                m[key] = try restoredMoment("exp_avg", of: key, shape: shape, in: tensors, path: path)
                v[key] = try restoredMoment("exp_avg_sq", of: key, shape: shape, in: tensors, path: path)
            }
        }
        expAvg = m
        expAvgSq = v
        stepCount = step
    }
}
