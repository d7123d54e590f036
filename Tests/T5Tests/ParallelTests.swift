import Foundation
import Synchronization
import Testing
@testable import T5

/// The worker pool: every part of every job runs exactly once, whoever claims it, with nested calls and
/// several callers at once (which the pool serves one at a time, the others running inline).
@Suite struct ParallelTests {
    final class Counts: @unchecked Sendable {
        let hits: Mutex<[Int]>
        init(_ n: Int) { hits = Mutex([Int](repeating: 0, count: n)) }
        func hit(_ i: Int) { hits.withLock { $0[i] += 1 } }
        func all(equal n: Int) -> Bool { hits.withLock { $0.allSatisfy { $0 == n } } }
    }

    @Test func everyPartRunsExactlyOnce() {
        let pinned = ParallelSettings.pin(threads: 2)
        defer { pinned.release() }
        for parts in [2, 3, 7, 64] {
            let counts = Counts(parts)
            for _ in 0..<500 { Parallel.run(parts) { counts.hit($0) } }
            #expect(counts.all(equal: 500), "parts \(parts)")
        }
    }

    /// Jobs far apart: the workers go to sleep between them (after `WorkerPool.spinTime`) and every job
    /// still completes, whether a woken worker or the caller runs its parts.
    @Test func jobsAfterTheWorkersSleepComplete() {
        let pinned = ParallelSettings.pin(threads: 2)
        defer { pinned.release() }
        let counts = Counts(3)
        for _ in 0..<4 {
            Parallel.run(3) { counts.hit($0) }
            usleep(useconds_t(3 * WorkerPool.spinTime / 1000))
        }
        #expect(counts.all(equal: 4))
    }

    @Test func nestedCallsRunInline() {
        let pinned = ParallelSettings.pin(threads: 2)
        defer { pinned.release() }
        let counts = Counts(4 * 5)
        for _ in 0..<100 {
            Parallel.run(4) { outer in Parallel.run(5) { inner in counts.hit(outer * 5 + inner) } }
        }
        #expect(counts.all(equal: 100))
    }

    /// Synchronous on purpose: the pin is a lock, and holding it across an `await` would starve the
    /// cooperative threads that other pinning tests block on it (a deadlock on a 2-core machine).
    @Test func concurrentCallersAllComplete() {
        let pinned = ParallelSettings.pin(threads: 2)
        defer { pinned.release() }
        let counts = Counts(4 * 8)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for _ in 0..<300 { Parallel.run(8) { counts.hit(caller * 8 + $0) } }
        }
        #expect(counts.all(equal: 300))
    }
}
