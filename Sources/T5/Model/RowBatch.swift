/// The rows of a batch of sequences, packed: sequence b occupies rows `first[b] ..< first[b] + lengths[b]`,
/// with no padding between them, so every product over the batch costs its tokens, not batch × longest.
///
/// Packing gives what transformers' padded batch gives: a padded position changes nothing a real position
/// computes (pad keys are masked out, pad queries of the decoder come after every real one and their labels are
/// -100), so leaving them out gives the same outputs, loss and gradients without computing them.
struct RowBatch: Sendable {
    /// Rows of each sequence.
    let lengths: [Int]
    /// First row of each sequence.
    let first: [Int]
    /// Absolute position of each sequence's first row: 0 when encoding and when teacher forcing a whole
    /// target, the number of positions already cached when a decode step appends to a sequence.
    let positions: [Int]
    /// Σ lengths.
    let rows: Int

    /// Packs sequences of `lengths` rows, each starting at position 0 (or at `positions[b]`).
    init(lengths: [Int], positions: [Int]? = nil) {
        precondition(positions == nil || positions?.count == lengths.count, "one start position per sequence")
        self.lengths = lengths
        var first = [Int](), rows = 0
        for n in lengths { first.append(rows); rows += n }
        self.first = first
        self.rows = rows
        self.positions = positions ?? [Int](repeating: 0, count: lengths.count)
    }

    /// Packs `sequences` of token ids.
    init(packing sequences: [[Int]]) {
        self.init(lengths: sequences.map(\.count))
    }

    var count: Int { lengths.count }
    var maxLength: Int { lengths.max() ?? 0 }
}
