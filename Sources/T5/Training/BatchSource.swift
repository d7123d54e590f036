/// Where a run's training batches come from, in an order fixed by the run's seed, so that a checkpoint's
/// `position` resumes it exactly. `BatchSampler` (a mixture of labelled tasks and streamed span-corruption
/// corpora) is today's; a teacher's targets are another.
public protocol BatchSource {
    /// The next micro-batch; throws when its data cannot be read (a streamed corpus file).
    mutating func next() throws(T5Error) -> TrainingBatch
    /// Where the next batch comes from, saved in each checkpoint.
    var position: DataPosition { get }
}

extension BatchSampler: BatchSource {}
