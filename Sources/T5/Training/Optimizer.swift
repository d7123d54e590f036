import Foundation

/// An optimizer over named fp32 tensors, updated in place.
///
/// Each tensor's update depends only on that tensor, its gradient and its own state, so the
/// order tensors are visited in never changes the result (the step runs them in parallel).
/// Only the tensors present in `gradients` are updated and get state: frozen tensors, which
/// have no gradient buffer, are never touched, as with torch's `p.grad is None` skip.
public protocol Optimizer: AnyObject {
    /// Optimizer steps taken so far (torch's `state["step"]`, the same for every tensor).
    var stepCount: Int { get }

    /// Applies one update to every tensor that has a gradient.
    ///
    /// `learningRate` is the scheduled rate; Adafactor's relative-step mode computes its own and ignores it.
    func step(parameters: [String: Tensor], gradients: [String: Tensor], learningRate: Double)

    /// The learning rate the last step applied, for progress reports: the scheduled rate, or for
    /// relative-step Adafactor its relative step size (before the per-tensor parameter scale).
    var lastLearningRate: Double { get }

    /// The optimizer's state as named tensors (`<parameter key>.<moment name>`), for checkpoints.
    func stateTensors() -> [String: Tensor]

    /// Restores state saved by `stateTensors()` after `step` steps. Every trainable tensor given
    /// in `shapes` must have its moments, with matching shapes; throws `.corruptCheckpoint` naming
    /// `path` otherwise.
    func restore(step: Int, tensors: [String: Tensor], shapes: [String: [Int]], path: String) throws(T5Error)

    /// A short description for logs and the training state, e.g. `AdamW(lr=0.001, betas=(0.9, 0.999), ...)`.
    var summary: String { get }
}

/// Which optimizer to train with, and its hyperparameters.
public enum OptimizerChoice: Sendable, Equatable {
    case adamW(AdamW.Options)
    case adafactor(Adafactor.Options)

    /// A fresh optimizer with empty state.
    public func make() -> any Optimizer {
        switch self {
        case .adamW(let options): return AdamW(options)
        case .adafactor(let options): return Adafactor(options)
        }
    }

    /// Whether the learning rate comes from outside (a schedule) rather than from the optimizer itself.
    public var usesExternalLearningRate: Bool {
        switch self {
        case .adamW: return true
        case .adafactor(let options): return !options.relativeStep
        }
    }

    /// The base learning rate a schedule multiplies, or nil for relative-step Adafactor.
    public var baseLearningRate: Double? {
        switch self {
        case .adamW(let options): return options.learningRate
        case .adafactor(let options): return options.relativeStep ? nil : options.learningRate
        }
    }
}

extension Optimizer {
    /// Restores one moment tensor of `key`, checking it exists with `shape`.
    func restoredMoment(_ name: String, of key: String, shape: [Int], in tensors: [String: Tensor], path: String) throws(T5Error) -> Tensor {
        let full = "\(key).\(name)"
        guard let tensor = tensors[full] else {
            throw .corruptCheckpoint(path: path, reason: "optimizer state lacks \(full)")
        }
        guard tensor.shape == shape else {
            throw .corruptCheckpoint(path: path, reason: "optimizer state \(full) has shape \(tensor.shape), expected \(shape)")
        }
        return tensor.copy()
    }
}

/// Runs `body(key, range)` over every tensor cut into ranges of at most `chunk` elements, in parallel: an
/// elementwise update (AdamW) then spreads a large embedding over every thread instead of one. Ranges are
/// disjoint, so the result does not depend on the schedule.
func forEachRangeConcurrently(_ keys: [String], counts: [String: Int], chunk: Int = 1 << 18, _ body: (String, Range<Int>) -> Void) {
    var work = [(String, Range<Int>)]()
    for key in keys {
        let n = counts[key] ?? 0
        for start in stride(from: 0, to: n, by: chunk) { work.append((key, start..<min(start + chunk, n))) }
    }
    let items = work
    Parallel.run(items.count) { body(items[$0].0, items[$0].1) }
}
