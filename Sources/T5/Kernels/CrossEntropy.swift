import Foundation

/// Token-level cross-entropy over (rows, V) logits, as torch's
/// `CrossEntropyLoss(ignore_index=-100, label_smoothing=ε)` computes it (T5ForConditionalGeneration's loss,
/// modeling_t5.py:1054, which uses ε = 0).
///
/// With lse = log Σ_j e^{x_j}, a row with target y contributes
///
///     loss = (1 − ε)·(lse − x_y) + (ε/V)·Σ_j (lse − x_j)  =  lse − (1 − ε)·x_y − (ε/V)·Σ_j x_j
///
/// and torch's mean reduction divides the sum of both terms by the number of non-ignored rows.
enum CrossEntropy {
    /// The target id of a row that takes no part in the loss (transformers pads labels with it).
    static let ignoreIndex: Int32 = -100

    /// Sums the row losses of the non-ignored rows (in Double), counts them, and counts the rows whose
    /// argmax (first maximal logit) is the target. `logSumExp` (rows), when given, receives each
    /// non-ignored row's log Σ exp for `backward` to reuse.
    ///
    /// Rows are split across threads (a (tokens, 32128) pass is ~8M exponentials per step); each row's loss
    /// is kept and the losses are summed in row order afterwards, so the sum does not depend on the split.
    static func forward(
        logits: UnsafePointer<Float>, rows: Int, vocab: Int, targets: UnsafePointer<Int32>, labelSmoothing: Float,
        logSumExp: UnsafeMutablePointer<Float>? = nil
    ) -> (lossSum: Double, tokens: Int, correct: Int) {
        let eps = Double(labelSmoothing)
        // (rows) each row's loss (0 for an ignored row) and whether its argmax is the target.
        var losses = [Double](repeating: 0, count: rows)
        var hits = [Bool](repeating: false, count: rows)
        losses.withUnsafeMutableBufferPointer { losses in
            hits.withUnsafeMutableBufferPointer { hits in
                Parallel.forEachSlice(rows, cost: 4 * rows * vocab) { slice in
                    for r in slice where targets[r] != ignoreIndex {
                        let y = Int(targets[r])
                        precondition(y >= 0 && y < vocab, "target id \(y) outside the vocabulary of \(vocab)")
                        let x = logits + r * vocab
                        let rowLSE = Softmax.logSumExp(x, vocab)
                        logSumExp?[r] = rowLSE
                        let lse = Double(rowLSE)
                        var loss = lse - (1 - eps) * Double(x[y])
                        if eps != 0 {
                            var sum = 0.0
                            for j in 0..<vocab { sum += Double(x[j]) }
                            loss -= eps / Double(vocab) * sum
                        }
                        losses[r] = loss
                        hits[r] = Vector.argmax(x, vocab) == y
                    }
                }
            }
        }
        var lossSum = 0.0
        var tokens = 0, correct = 0
        for r in 0..<rows where targets[r] != ignoreIndex {
            lossSum += losses[r]
            tokens += 1
            if hits[r] { correct += 1 }
        }
        return (lossSum, tokens, correct)
    }

    /// dLogits ← scale · ∂(Σ row losses)/∂logits = scale · (softmax(x) − (1 − ε)·onehot(y) − ε/V), and 0 for
    /// ignored rows. For torch's mean, scale = 1/tokens (times any loss scale).
    ///
    /// Writes rather than accumulates: the loss is the root of the graph, and writing lets `dLogits` be the
    /// `logits` buffer itself, which saves a (rows, V) buffer (32k floats per token for a T5 vocabulary).
    /// `logSumExp` is what `forward` saved (recomputed when nil). Rows are split across threads.
    static func backward(
        logits: UnsafePointer<Float>, rows: Int, vocab: Int, targets: UnsafePointer<Int32>, labelSmoothing: Float,
        scale: Float, logSumExp: UnsafePointer<Float>? = nil, into dLogits: UnsafeMutablePointer<Float>
    ) {
        Parallel.forEachSlice(rows, cost: 4 * rows * vocab) { slice in
            backward(
                logits: logits, rows: slice, vocab: vocab, targets: targets,
                labelSmoothing: labelSmoothing, scale: scale, logSumExp: logSumExp, into: dLogits)
        }
    }

    /// `backward` over `rows` of the buffers.
    private static func backward(
        logits: UnsafePointer<Float>, rows: Range<Int>, vocab: Int, targets: UnsafePointer<Int32>, labelSmoothing: Float,
        scale: Float, logSumExp: UnsafePointer<Float>?, into dLogits: UnsafeMutablePointer<Float>
    ) {
        let floor = labelSmoothing / Float(vocab)
        for r in rows {
            let x = logits + r * vocab, g = dLogits + r * vocab
            if targets[r] == ignoreIndex {
                g.update(repeating: 0, count: vocab)
                continue
            }
            let y = Int(targets[r])
            let lse = logSumExp?[r] ?? Softmax.logSumExp(x, vocab)
            var j = 0
            while j + Vector.width <= vocab {
                let p = Vector.exp(Vector.load(x + j) - lse)
                Vector.store(scale * (p - floor), g + j)
                j += Vector.width
            }
            while j < vocab { g[j] = scale * (expf(x[j] - lse) - floor); j += 1 }
            g[y] -= scale * (1 - labelSmoothing)
        }
    }
}
