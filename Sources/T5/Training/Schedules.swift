import Foundation

/// A learning-rate schedule: the base rate times a multiplier of the step, as transformers'
/// `LambdaLR` schedules compute it (transformers/optimization.py).
///
/// `step` counts optimizer steps already taken, so the first update uses `multiplier(0)` — which
/// is 0 during a warmup, exactly as the transformers Trainer does (it calls `scheduler.step()`
/// after each `optimizer.step()`).
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// `get_constant_schedule_with_warmup`: linear from 0 over the warmup, then 1.
        case constant
        /// `get_linear_schedule_with_warmup`: linear from 0 over the warmup, then linear to 0 at the last step.
        case linear
        /// `get_inverse_sqrt_schedule`: linear warmup, then 1/√((step + timescale − warmup) / timescale),
        /// timescale = warmup (10 000 without warmup).
        case inverseSqrt = "inverse-sqrt"
    }

    public var kind: Kind
    /// Steps of linear warmup from 0.
    public var warmupSteps: Int
    /// Total optimizer steps of the run (the linear schedule reaches 0 there).
    public var totalSteps: Int

    public init(_ kind: Kind = .constant, warmupSteps: Int = 0, totalSteps: Int) {
        self.kind = kind
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// The multiplier for the update after `step` optimizer steps.
    public func multiplier(step: Int) -> Double {
        if step < warmupSteps {
            // Every transformers schedule: float(step) / float(max(1, num_warmup_steps)).
            return Double(step) / Double(max(1, warmupSteps))
        }
        switch kind {
        case .constant:
            return 1
        case .linear:
            return max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
        case .inverseSqrt:
            let timescale = warmupSteps > 0 ? warmupSteps : 10_000
            let shift = timescale - warmupSteps
            return 1 / (Double(step + shift) / Double(timescale)).squareRoot()
        }
    }

    /// The learning rate of the update after `step` steps, for a base rate.
    public func learningRate(base: Double, step: Int) -> Double {
        base * multiplier(step: step)
    }
}
