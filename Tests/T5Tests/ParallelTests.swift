import Foundation
import Synchronization
import Testing
@testable import T5

/// The worker pool: every part of every job runs exactly once, whoever claims it, with nested calls and
/// several callers at once (which the pool serves one at a time, the others running inline).
@Suite struct ParallelTests {
    /// A value behind an `NSLock`, shared by reference. Not a `Synchronization.Mutex`: on Linux its contended
    /// hand-over happens in an uninstrumented library, so ThreadSanitizer reports the next access under it as
    /// a race (see Fuzz/tsan.supp); a pthread mutex it understands.
    final class Locked<T>: @unchecked Sendable {
        private let lock = NSLock()
        private var value: T
        init(_ initial: T) { value = initial }
        func withLock<R>(_ body: (inout T) -> R) -> R {
            lock.lock()
            defer { lock.unlock() }
            return body(&value)
        }
    }

    final class Counts: @unchecked Sendable {
        let hits: Mutex<[Int]>
        init(_ n: Int) { hits = Mutex([Int](repeating: 0, count: n)) }
        func hit(_ i: Int) { hits.withLock { $0[i] += 1 } }
        func all(equal n: Int) -> Bool { hits.withLock { $0.allSatisfy { $0 == n } } }
    }

    @Test func everyPartRunsExactlyOnce() {
        ParallelSettings.scoped(threads: 2) {
            for parts in [2, 3, 7, 64] {
                let counts = Counts(parts)
                for _ in 0..<500 { Parallel.run(parts) { counts.hit($0) } }
                #expect(counts.all(equal: 500), "parts \(parts)")
            }
        }
    }

    /// Jobs far apart: the workers go to sleep between them (after `WorkerPool.spinTime`) and every job
    /// still completes, whether a woken worker or the caller runs its parts.
    @Test func jobsAfterTheWorkersSleepComplete() {
        ParallelSettings.scoped(threads: 2) {
            let counts = Counts(3)
            for _ in 0..<4 {
                Parallel.run(3) { counts.hit($0) }
                usleep(useconds_t(3 * WorkerPool.spinTime / 1000))
            }
            #expect(counts.all(equal: 4))
        }
    }

    @Test func nestedCallsRunInline() {
        ParallelSettings.scoped(threads: 2) {
            let counts = Counts(4 * 5)
            for _ in 0..<100 {
                Parallel.run(4) { outer in Parallel.run(5) { inner in counts.hit(outer * 5 + inner) } }
            }
            #expect(counts.all(equal: 100))
        }
    }

    /// Callers on threads that are not tasks (GCD's) scope their own settings too.
    @Test func concurrentCallersAllComplete() {
        let counts = Counts(4 * 8)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            ParallelSettings.scoped(threads: 2) {
                for _ in 0..<300 { Parallel.run(8) { counts.hit(caller * 8 + $0) } }
            }
        }
        #expect(counts.all(equal: 300))
    }

    /// `forEachSlice` covers the range exactly once, in slices that are whole granules but the last, and
    /// with at most `scratchSlots` distinct part indices, for every thread count and size.
    @Test func slicesCoverTheRangeInWholeGranules() {
        for threads in [1, 2, 3, 5] {
            ParallelSettings.scoped(threads: threads, minimumCost: 0) {
                for (count, granule) in [(0, 1), (1, 1), (7, 1), (100, 8), (130, 64), (5, 16), (1000, 3)] {
                    let counts = Counts(count)
                    let slices = Locked([Range<Int>]())
                    Parallel.forEachSlice(count, granule: granule, cost: 1) { range in
                        slices.withLock { $0.append(range) }
                        for i in range { counts.hit(i) }
                    }
                    #expect(counts.all(equal: 1), "threads \(threads) count \(count) granule \(granule)")
                    let sorted = slices.withLock { $0 }.sorted { $0.lowerBound < $1.lowerBound }
                    #expect(sorted.dropLast().allSatisfy { $0.count % granule == 0 && !$0.isEmpty })
                    #expect(sorted.count <= max(1, min(threads, (count + granule - 1) / granule)))

                    let parts = Locked(Set<Int>())
                    let slotCounts = Counts(count)
                    Parallel.forEachSlice(count, granule: granule, cost: 1, scratchSlots: 2) { part, range in
                        parts.withLock { _ = $0.insert(part) }
                        for i in range { slotCounts.hit(i) }
                    }
                    #expect(slotCounts.all(equal: 1))
                    #expect(parts.withLock { $0.allSatisfy { (0..<2).contains($0) } })
                }
            }
        }
    }

    /// Two tasks running at the same time with different scoped thread counts each see their own, in the
    /// setting and in how many slices a parallel loop makes; a nested scope restores the outer one, and
    /// after the scopes the process default is back.
    @Test func scopedSettingsAreEachTasksOwn() async {
        let defaultThreads = Parallel.threads, defaultCost = Parallel.minimumCost
        let barrier = Barrier(parties: 2)
        let seen = await withTaskGroup(of: (Int, Int, Int, Int).self) { group in
            for threads in [3, 5] {
                group.addTask {
                    await Parallel.withSettings(threads: threads, minimumCost: 0) {
                        // Both tasks are inside their scopes before either reads them.
                        await barrier.arriveAndWait()
                        let slices = Locked(0)
                        Parallel.forEachSlice(100, cost: 1) { _ in slices.withLock { $0 += 1 } }
                        let nested = Parallel.withSettings(threads: 1) { Parallel.threads }
                        await barrier.arriveAndWait()
                        return (threads, Parallel.threads, slices.withLock { $0 }, nested)
                    }
                }
            }
            var all = [(Int, Int, Int, Int)]()
            for await result in group { all.append(result) }
            return all
        }
        #expect(seen.count == 2)
        for (wanted, threads, slices, nested) in seen {
            #expect(threads == wanted && slices == wanted, "scope of \(wanted) threads saw \(threads), \(slices) slices")
            #expect(nested == 1)
        }
        #expect(Parallel.threads == defaultThreads && Parallel.minimumCost == defaultCost)
    }

    /// A synchronous scope ends with its closure; nested scopes stack; counts below 1 count as 1.
    @Test func synchronousScopesNestAndEnd() {
        let defaultThreads = T5Runtime.threads
        let inner = T5Runtime.withThreads(defaultThreads + 3) {
            let outer = T5Runtime.threads
            let nested = Parallel.withSettings(minimumCost: 7) { (T5Runtime.threads, Parallel.minimumCost) }
            return (outer, nested.0, nested.1, T5Runtime.withThreads(0) { T5Runtime.threads }, T5Runtime.threads)
        }
        #expect(inner.0 == defaultThreads + 3 && inner.1 == defaultThreads + 3 && inner.2 == 7)
        #expect(inner.3 == 1 && inner.4 == defaultThreads + 3)
        #expect(T5Runtime.threads == defaultThreads && Parallel.minimumCost == Parallel.defaultMinimumCost)
    }

    /// Holds each arriving task until `parties` have arrived.
    actor Barrier {
        private let parties: Int
        private var arrived = 0
        private var waiting = [CheckedContinuation<Void, Never>]()
        init(parties: Int) { self.parties = parties }

        func arriveAndWait() async {
            arrived += 1
            if arrived == parties {
                arrived = 0
                let resumed = waiting
                waiting = []
                for continuation in resumed { continuation.resume() }
                return
            }
            await withCheckedContinuation { waiting.append($0) }
        }
    }
}
