import Foundation
@testable import T5

/// `Parallel`'s thread count and cost threshold are process-wide, and tests run concurrently. A test that
/// changes them, and a test whose results must be bit-identical between two runs in this process (the thread
/// split decides the order of floating-point sums), pin them for their duration: the lock keeps every other
/// pinning test out meanwhile, so neither sees the other's settings.
struct ParallelSettings {
    private static let lock = NSRecursiveLock()
    private let threads: Int
    private let minimumCost: Int

    /// Takes the lock and sets the settings (defaults: the process's own); `release()` restores them.
    static func pin(threads: Int = ProcessInfo.processInfo.activeProcessorCount, minimumCost: Int = 20_000) -> ParallelSettings {
        lock.lock()
        let saved = ParallelSettings(threads: Parallel.threads, minimumCost: Parallel.minimumCost)
        T5Runtime.setThreads(threads)
        Parallel.minimumCost = minimumCost
        return saved
    }

    func release() {
        T5Runtime.setThreads(threads)
        Parallel.minimumCost = minimumCost
        Self.lock.unlock()
    }
}
