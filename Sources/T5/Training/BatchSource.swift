/// Where a run's training batches come from, in an order fixed by the run's seed, so that a checkpoint's
/// `position` resumes it exactly. `BatchSampler` (a mixture of labelled tasks) is today's; span corruption
/// over a corpus and a teacher's targets are others.
public protocol BatchSource {
    /// The next micro-batch.
    mutating func next() -> TrainingBatch
    /// Where the next batch comes from, saved in each checkpoint.
    var position: DataPosition { get }
}

extension BatchSampler: BatchSource {}
