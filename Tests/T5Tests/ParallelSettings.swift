import Foundation
@testable import T5

/// Scoped thread settings for tests. Tests run concurrently; `Parallel`'s settings are task-local, so a test
/// that forces the parallel paths (2 threads, no cost threshold) changes them for itself only, and a test
/// whose results must be bit-identical between two runs in this process (the thread split decides the order
/// of floating-point sums) fixes them for its duration whatever else runs meanwhile.
enum ParallelSettings {
    /// Runs `body` with `threads` and `minimumCost` (defaults: the process's own defaults) in force.
    static func scoped<R>(
        threads: Int = Parallel.availableCores, minimumCost: Int = Parallel.defaultMinimumCost, _ body: () throws -> R
    ) rethrows -> R {
        try Parallel.withSettings(threads: threads, minimumCost: minimumCost, body)
    }
}
