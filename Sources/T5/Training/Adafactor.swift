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
                throw .invalidOption(name: "OptimizerChoice.learningRate", reason: "must be positive, got \(learningRate)")
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

        var jobs = [Job]()
        for key in keys {
            guard let p = parameters[key], let g = gradients[key], let moment = secondMoments[key] else { continue }
            precondition(p.shape == g.shape, "gradient of \(key) has shape \(g.shape), parameter \(p.shape)")
            jobs.append(Job(p: p, g: g, moment: moment, firstMoment: firstMoments[key]))
        }
        run(jobs, relativeStep: relativeStep, beta2t: beta2t)
    }

    /// One tensor's step, viewed as `rows × cols` (the last dimension is `cols`; a vector is one row) and
    /// cut into chunks of whole rows so that a large tensor (the embedding) spreads over every thread.
    /// Chunks have a fixed size and their partial sums are combined in chunk order, so the result does
    /// not depend on the number of threads.
    /// Unchecked: during the parallel phases each chunk writes only its own rows and partial-sum slots;
    /// the fields shared by a tensor's chunks are written between phases, on one thread.
    private final class Job: @unchecked Sendable {
        let p: Tensor, g: Tensor, moment: SecondMoment, firstMoment: Tensor?
        let n: Int, rows: Int, cols: Int
        /// Rows per matrix: the second-to-last dimension (factored), or all rows.
        let rowsPerMatrix: Int
        let chunks: [Range<Int>]
        /// Per chunk: Σ g² + eps₁ over each column of the chunk's matrix (factored only), Σ p², Σ update².
        /// Raw memory: chunks on different threads write their own slots.
        let columnPartials: UnsafeMutableBufferPointer<Double>
        let parameterPartials: UnsafeMutableBufferPointer<Double>
        let updatePartials: UnsafeMutableBufferPointer<Double>
        /// rsqrt(row / mean(row)) per row (1 when not factored), and the per-column factor: rsqrt(col)
        /// of the row's matrix, or rsqrt(v) per element of a vector.
        var rowFactor: [Float]
        var colFactor: [Float] = []
        var lr: Float = 0
        var divisor: Float = 1

        init(p: Tensor, g: Tensor, moment: SecondMoment, firstMoment: Tensor?) {
            self.p = p
            self.g = g
            self.moment = moment
            self.firstMoment = firstMoment
            n = p.count
            if case .factored = moment {
                cols = g.shape[g.shape.count - 1]
                rowsPerMatrix = g.shape[g.shape.count - 2]
            } else {
                cols = n
                rowsPerMatrix = 1
            }
            rows = cols == 0 ? 0 : n / cols
            // About 64K elements per chunk, never spanning two matrices.
            let perChunk = max(1, min(rowsPerMatrix, (1 << 16) / max(cols, 1)))
            var chunks = [Range<Int>]()
            for matrixStart in stride(from: 0, to: rows, by: rowsPerMatrix) {
                for start in stride(from: matrixStart, to: matrixStart + rowsPerMatrix, by: perChunk) {
                    chunks.append(start..<min(start + perChunk, matrixStart + rowsPerMatrix))
                }
            }
            self.chunks = chunks
            func zeros(_ count: Int) -> UnsafeMutableBufferPointer<Double> {
                let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: count)
                buffer.initialize(repeating: 0)
                return buffer
            }
            if case .factored = moment {
                columnPartials = zeros(chunks.count * cols)
            } else {
                columnPartials = zeros(0)
            }
            parameterPartials = zeros(chunks.count)
            updatePartials = zeros(chunks.count)
            rowFactor = [Float](repeating: 1, count: rows)
        }

        deinit {
            columnPartials.deallocate()
            parameterPartials.deallocate()
            updatePartials.deallocate()
        }

        /// Σ update² over the rows in `range` (update as in `forEachUpdate`), row by row.
        func sumOfSquaredUpdates(in range: Range<Int>) -> Double {
            let gp = g.pointer, cols = cols, rowsPerMatrix = rowsPerMatrix
            return rowFactor.withUnsafeBufferPointer { rowFactor in
                colFactor.withUnsafeBufferPointer { colFactor in
                    var lanes0 = SIMD8<Double>(), lanes1 = SIMD8<Double>(), tail = 0.0
                    for r in range {
                        let rf = rowFactor[r], cf = colFactor.baseAddress.unsafelyUnwrapped + (r / rowsPerMatrix) * cols
                        let gr = gp + r * cols, rfv = Vector.V(repeating: rf)
                        var c = 0
                        while c + Vector.width <= cols {
                            let u = (rfv * Vector.load(cf + c)) * Vector.load(gr + c)
                            let low = SIMD8<Double>(u.lowHalf), high = SIMD8<Double>(u.highHalf)
                            lanes0 += low * low
                            lanes1 += high * high
                            c += Vector.width
                        }
                        while c < cols {
                            let u = Double((rf * cf[c]) * gr[c])
                            tail += u * u
                            c += 1
                        }
                    }
                    return (lanes0 + lanes1).sum() + tail
                }
            }
        }

        /// p −= (update / divisor) · lr over the rows in `range` (no first moment, no weight decay: T5's and
        /// the default configuration), `Vector.width` elements at a time with the scalar loop's operations in
        /// its order, so the result is the same to the bit.
        func applyUpdate(in range: Range<Int>, divisor: Float, lr: Float) {
            let gp = g.pointer, pp = p.pointer, cols = cols, rowsPerMatrix = rowsPerMatrix
            let divisorV = Vector.V(repeating: divisor), lrV = Vector.V(repeating: lr)
            rowFactor.withUnsafeBufferPointer { rowFactor in
                colFactor.withUnsafeBufferPointer { colFactor in
                    for r in range {
                        let rf = rowFactor[r], cf = colFactor.baseAddress.unsafelyUnwrapped + (r / rowsPerMatrix) * cols
                        let gr = gp + r * cols, pr = pp + r * cols, rfv = Vector.V(repeating: rf)
                        var c = 0
                        while c + Vector.width <= cols {
                            let u = (rfv * Vector.load(cf + c)) * Vector.load(gr + c)
                            Vector.store(Vector.load(pr + c) - (u / divisorV) * lrV, pr + c)
                            c += Vector.width
                        }
                        while c < cols {
                            pr[c] -= ((rf * cf[c]) * gr[c] / divisor) * lr
                            c += 1
                        }
                    }
                }
            }
        }

        /// Calls `body(i, update_i)` for the elements of the rows in `range`, where
        /// update = (rowFactor ⊗ colFactor) · grad, multiplied in torch's order.
        @inline(__always)
        func forEachUpdate(in range: Range<Int>, _ body: (Int, Float) -> Void) {
            let gp = g.pointer, cols = cols, rowsPerMatrix = rowsPerMatrix
            rowFactor.withUnsafeBufferPointer { rowFactor in
                colFactor.withUnsafeBufferPointer { colFactor in
                    for r in range {
                        let rf = rowFactor[r]
                        let colBase = (r / rowsPerMatrix) * cols
                        let base = r * cols
                        for c in 0..<cols { body(base + c, (rf * colFactor[colBase + c]) * gp[base + c]) }
                    }
                }
            }
        }
    }

    /// The step over all tensors in five phases: three parallel passes over the chunks (statistics;
    /// update norms; the update itself) with cheap per-tensor reductions between them.
    private func run(_ jobs: [Job], relativeStep: Double, beta2t: Double) {
        let work = jobs.indices.flatMap { j in jobs[j].chunks.indices.map { (j, $0) } }
        let decay = Float(beta2t), keep = Float(1 - beta2t)
        let eps1 = Float(options.eps1)
        let scaleParameter = options.scaleParameter

        // 1. Second-moment statistics (row statistics and vectors are written in place: each chunk owns
        //    its rows) and partial sums of g² per column and of p².
        parallel(jobs, work) { job, k in
            let range = job.chunks[k]
            let gp = job.g.pointer, pp = job.p.pointer, cols = job.cols
            switch job.moment {
            case let .factored(row, _):
                let rp = row.pointer
                let partial = job.columnPartials.baseAddress.map { $0 + k * cols }
                for r in range {
                    let gr = gp + r * cols
                    let sum: Double
                    if let partial {
                        sum = Self.squaresPlusEpsilon(gr, cols, eps1: eps1, addingInto: partial)
                    } else {
                        sum = Self.sum(cols) { c in Double(gr[c] * gr[c] + eps1) }
                    }
                    // exp_avg_sq_row ← β₂ₜ·row + (1−β₂ₜ)·mean over the last dim of (g² + eps₁).
                    rp[r] = rp[r] * decay + keep * Float(sum / Double(cols))
                }
            case let .full(v):
                let vp = v.pointer
                for i in (range.lowerBound * cols)..<(range.upperBound * cols) {
                    vp[i] = vp[i] * decay + keep * (gp[i] * gp[i] + eps1)
                }
            }
            if scaleParameter {
                let first = pp + range.lowerBound * cols
                job.parameterPartials[k] = Self.sum(range.count * cols) { Double(first[$0]) * Double(first[$0]) }
            }
        }

        // 2. Per tensor: column statistics, the factors (`_approx_sq_grad`) and the rate.
        for job in jobs {
            let cols = job.cols
            switch job.moment {
            case let .factored(row, col):
                let rp = row.pointer, cp = col.pointer
                let matrices = job.rows / max(job.rowsPerMatrix, 1)
                var sums = [Double](repeating: 0, count: matrices * cols)
                for (k, range) in job.chunks.enumerated() {
                    let m = range.lowerBound / job.rowsPerMatrix
                    for c in 0..<cols { sums[m * cols + c] += job.columnPartials[k * cols + c] }
                }
                // exp_avg_sq_col ← β₂ₜ·col + (1−β₂ₜ)·mean over the second-to-last dim of (g² + eps₁).
                for j in 0..<(matrices * cols) {
                    cp[j] = cp[j] * decay + keep * Float(sums[j] / Double(job.rowsPerMatrix))
                }
                for m in 0..<matrices {
                    var sum = 0.0
                    for r in 0..<job.rowsPerMatrix { sum += Double(rp[m * job.rowsPerMatrix + r]) }
                    let mean = Float(sum / Double(job.rowsPerMatrix))
                    for r in (m * job.rowsPerMatrix)..<((m + 1) * job.rowsPerMatrix) {
                        job.rowFactor[r] = 1 / (rp[r] / mean).squareRoot()
                    }
                }
                job.colFactor = (0..<(matrices * cols)).map { 1 / cp[$0].squareRoot() }
            case let .full(v):
                let vp = v.pointer
                job.colFactor = (0..<job.n).map { 1 / vp[$0].squareRoot() }
            }
            // state["RMS"] = _rms(p) before the update; lr = max(eps₂, RMS) · rel_step_sz (a fp32 tensor
            // times a Python float), or the bare step size without scale_parameter.
            job.lr = Float(relativeStep)
            if scaleParameter {
                let rms = Float((job.parameterPartials.reduce(0, +) / Double(max(job.n, 1))).squareRoot())
                job.lr = max(Float(options.eps2), rms) * Float(relativeStep)
            }
        }

        // 3. Σ update² per chunk, update = (rowFactor ⊗ colFactor) · grad in torch's order.
        parallel(jobs, work) { job, k in
            job.updatePartials[k] = job.sumOfSquaredUpdates(in: job.chunks[k])
        }
        // 4. update /= max(RMS(update) / clip_threshold, 1)
        for job in jobs {
            let rms = Float((job.updatePartials.reduce(0, +) / Double(max(job.n, 1))).squareRoot())
            job.divisor = max(rms / Float(options.clipThreshold), 1)
        }

        // 5. The update: × lr, through the first moment when beta1 is set, after the weight decay.
        let applyDecay = options.weightDecay != 0
        let beta1 = options.beta1.map(Float.init)
        let oneMinusBeta1 = options.beta1.map { Float(1 - $0) } ?? 0
        parallel(jobs, work) { job, k in
            let pp = job.p.pointer, lr = job.lr, divisor = job.divisor
            let weightDecay = Float(-options.weightDecay) * lr
            if let beta1, let mp = job.firstMoment?.pointer {
                job.forEachUpdate(in: job.chunks[k]) { i, u in
                    mp[i] = mp[i] * beta1 + oneMinusBeta1 * ((u / divisor) * lr)
                    if applyDecay { pp[i] += weightDecay * pp[i] }
                    pp[i] -= mp[i]
                }
            } else if !applyDecay {
                job.applyUpdate(in: job.chunks[k], divisor: divisor, lr: lr)
            } else {
                job.forEachUpdate(in: job.chunks[k]) { i, u in
                    pp[i] += weightDecay * pp[i]
                    pp[i] -= (u / divisor) * lr
                }
            }
        }
    }

    /// Σ term(i) for i in 0..<count in double precision, in eight interleaved partial sums (i mod 8) added
    /// at the end: one running sum is a chain of dependent additions, bound by their latency (about 4
    /// cycles per element), which made these sums most of the step's time. The order is fixed, so the
    /// result still does not depend on the number of threads.
    @inline(__always)
    static func sum(_ count: Int, _ term: (Int) -> Double) -> Double {
        var lanes = SIMD8<Double>()
        var i = 0
        while i + 8 <= count {
            lanes += SIMD8(term(i), term(i + 1), term(i + 2), term(i + 3), term(i + 4), term(i + 5), term(i + 6), term(i + 7))
            i += 8
        }
        var tail = 0.0
        while i < count {
            tail += term(i)
            i += 1
        }
        return lanes.sum() + tail
    }

    /// Σ (g² + eps₁) over a row of `n` gradients in double precision (each term rounded as the scalar
    /// `Double(g * g + eps1)`), each term also added into `partial[c]`, its column's running sum.
    @inline(__always)
    static func squaresPlusEpsilon(_ g: UnsafePointer<Float>, _ n: Int, eps1: Float, addingInto partial: UnsafeMutablePointer<Double>) -> Double {
        let eps = Vector.V(repeating: eps1)
        var lanes0 = SIMD8<Double>(), lanes1 = SIMD8<Double>(), tail = 0.0
        var c = 0
        while c + Vector.width <= n {
            let v = Vector.load(g + c)
            let x = v * v + eps
            let low = SIMD8<Double>(x.lowHalf), high = SIMD8<Double>(x.highHalf)
            lanes0 += low
            lanes1 += high
            let p0 = UnsafeMutableRawPointer(partial + c), p1 = UnsafeMutableRawPointer(partial + c + 8)
            p0.storeBytes(of: p0.loadUnaligned(as: SIMD8<Double>.self) + low, as: SIMD8<Double>.self)
            p1.storeBytes(of: p1.loadUnaligned(as: SIMD8<Double>.self) + high, as: SIMD8<Double>.self)
            c += Vector.width
        }
        while c < n {
            let x = Double(g[c] * g[c] + eps1)
            tail += x
            partial[c] += x
            c += 1
        }
        return (lanes0 + lanes1).sum() + tail
    }

    /// Runs `body(job, chunk)` for every chunk of every job on the worker threads. Chunks write
    /// disjoint rows and their own partial-sum slots.
    private func parallel(_ jobs: [Job], _ work: [(Int, Int)], _ body: (Job, Int) -> Void) {
        Parallel.run(work.count) { body(jobs[work[$0].0], work[$0].1) }
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
