import Foundation
import T5

/// The library names its settings by their Swift fields (`GenerationOptions.numBeams`); the command line
/// names them by flags (`--beams`). This is the one table between the two: every error line the CLI prints
/// goes through `FlagNames.cli(_:)`.
enum FlagNames {
    static let table: [(field: String, flag: String)] = [
        ("GenerationOptions.maxNewTokens", "--max-new-tokens"),
        ("GenerationOptions.minNewTokens", "--min-new-tokens"),
        ("GenerationOptions.numBeams", "--beams"),
        ("GenerationOptions.numReturnSequences", "--num-return-sequences"),
        ("GenerationOptions.sample", "--sample"),
        ("GenerationOptions.lengthPenalty", "--length-penalty"),
        ("GenerationOptions.temperature", "--temperature"),
        ("GenerationOptions.topK", "--top-k"),
        ("GenerationOptions.topP", "--top-p"),
        ("GenerationOptions.repetitionPenalty", "--repetition-penalty"),
        ("GenerationOptions.noRepeatNgramSize", "--no-repeat-ngram-size"),
        ("GenerationOptions.maxInputTokens", "--max-input-tokens"),
        ("GenerationOptions.truncateInputsTo", "--truncate"),
        ("EmbeddingOptions.maxInputTokens", "--max-input-tokens"),
        ("EmbeddingOptions.truncateTo", "--truncate"),
        ("EmbeddingOptions.padTo", "--pad-to"),
        ("TrainingOptions.length.steps", "--steps"),
        ("TrainingOptions.length.epochs", "--epochs"),
        ("TrainingOptions.batchSize", "--batch-size"),
        ("TrainingOptions.gradientAccumulation", "--grad-accum"),
        ("TrainingOptions.warmupSteps", "--warmup"),
        ("TrainingOptions.maxGradNorm", "--max-grad-norm"),
        ("TrainingOptions.labelSmoothing", "--label-smoothing"),
        ("TrainingOptions.dropout", "--dropout"),
        ("TrainingOptions.evalEvery", "--eval-every"),
        ("TrainingOptions.saveEvery", "--save-every"),
        ("TrainingOptions.evalBatchSize", "--eval-batch-size"),
        ("TrainingOptions.evalMaxNewTokens", "--max-target-tokens"),
        ("TrainingOptions.maxNonFiniteSteps", "--skip-nonfinite-steps"),
        ("TrainingOptions.schedule", "--schedule"),
        ("OptimizerChoice.learningRate", "--lr"),
        ("OptimizerChoice.weightDecay", "--weight-decay"),
        ("Freezing.frozenKeys", "--freeze"),
        ("TrainingData.tasks", "--train"),
        ("TrainingData.weights", "--mix"),
        ("Trainer.resume", "--resume"),
        ("TokenizerTraining.vocabSize", "--vocab-size"),
        ("TokenizerTraining.characterCoverage", "--character-coverage"),
        ("TokenizerTraining.inputSentenceSize", "--input-sentence-size"),
        ("TokenizerTraining.threads", "--threads"),
        ("SpanCorruption.noiseDensity", "--noise-density"),
        ("SpanCorruption.meanSpanLength", "--mean-span-length"),
        ("SpanCorruption.inputLength", "--input-length"),
        ("Tokenizer.sentinelCount", "--input-length"),
        ("SpanCorruptionCorpus.files", "--text"),
        ("DistillationObjective.alpha", "--alpha"),
        ("DistillationObjective.temperature", "--temperature"),
        ("StudentLayers", "--student-layers"),
        ("DistillationObjective.student", "--student"),
        ("DistillationObjective.hiddenWeight", "--hidden-weight"),
        ("TeacherTargets.beams", "--teacher-beams"),
        ("TeacherTargets.maxTargetTokens", "--max-target-tokens"),
        ("Distillation.teacher", "--teacher"),
        ("SearchSpace", "--space"),
        ("maxInputTokens", "--max-input-tokens"),
    ]

    /// `message` with every library field the table knows replaced by its flag (qualified names first,
    /// so that `GenerationOptions.maxInputTokens` does not become `GenerationOptions.--max-input-tokens`).
    static func cli(_ message: String) -> String {
        var text = message
        for (field, flag) in table {
            text = text.replacingOccurrences(of: field, with: flag)
        }
        return text
    }
}
