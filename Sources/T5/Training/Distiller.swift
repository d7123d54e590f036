import Foundation

/// Distillation in one call: `Finetuning.run` with a teacher, whose distribution the student learns besides
/// the labels (`DistillationObjective`):
///
/// ```swift
/// let student = try await Distiller.run(
///     teacher: .init(directory: URL(fileURLWithPath: "tuned-t5-base")),
///     student: URL(fileURLWithPath: "student"),
///     train: [.file("train.jsonl")], options: options, output: URL(fileURLWithPath: "distilled")) { event in
///     if case .step(let report) = event { print(report.step, report.loss) }
/// }
/// ```
///
/// `student` is a model directory sharing the teacher's tokenizer; a smaller copy of the teacher is
/// `T5Model.student(copying:)`, saved with `Checkpoint.writeModel`. Cancelling the task stops after the
/// current step, with a checkpoint. Resuming or a custom loop: `Trainer` with a `DistillationObjective`.
public enum Distiller {
    /// The teacher of a run: its directory, the precision its projections run in (nil: as saved), and the
    /// loss's α, τ and hidden-state weight (`DistillationObjective`'s defaults, Shleifer & Rush's; the hidden
    /// states are compared at evenly spaced teacher layers).
    public struct Teacher: Sendable {
        public var directory: URL
        public var weights: WeightPrecision?
        public var alpha: Float
        public var temperature: Float
        public var hiddenWeight: Float

        public init(directory: URL, weights: WeightPrecision? = nil, alpha: Float = DistillationObjective.defaultAlpha,
                    temperature: Float = DistillationObjective.defaultTemperature, hiddenWeight: Float = 0) {
            self.directory = directory
            self.weights = weights
            self.alpha = alpha
            self.temperature = temperature
            self.hiddenWeight = hiddenWeight
        }
    }

    /// Trains the model in `student` against `teacher` on `train` with `options` (see `Finetuning.run`, whose
    /// arguments these are), calling `onEvent` after every step and evaluation, and saves checkpoints and the
    /// result in `output`, which must not exist or be empty. Returns the trained student.
    public static func run(
        teacher: Teacher, student: URL, train: [Finetuning.Task], validation: [Finetuning.Task] = [],
        options: TrainingOptions = .init(), freeze: [String] = [], maxInputTokens: Int? = nil, maxTargetTokens: Int? = nil,
        output: URL, onEvent: @escaping @Sendable (Finetuning.Event) -> Void = { _ in }
    ) async throws(T5Error) -> T5Model {
        try await Finetuning.run(
            Finetuning.Settings(model: student, train: train, validation: validation, options: options, freeze: freeze,
                                maxInputTokens: maxInputTokens, maxTargetTokens: maxTargetTokens, output: output, teacher: teacher),
            onEvent: onEvent)
    }
}
