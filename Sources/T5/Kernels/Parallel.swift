import CKernels
import Foundation
import Synchronization

/// The runtime's own threads (`WorkerPool`). OpenBLAS runs single-threaded and every parallel loop goes
/// through here, so BLAS threads and ours never compete for the cores (OpenBLAS's idle threads spin and
/// yield, which slowed memory-bound decode steps measurably).
enum Parallel {
    /// Thread count, the caller's included; `T5Runtime.setThreads` changes it. Atomic (relaxed), because it
    /// may be set while other threads compute: a caller reads it once per loop, and buffers sized from an
    /// earlier reading (the decoder's attention scratch) are checked against what they hold.
    static var threads: Int {
        get { threadCount.load(ordering: .relaxed) }
        set { threadCount.store(newValue, ordering: .relaxed) }
    }
    private static let threadCount = Atomic<Int>(availableCores)

    /// The cores this process may run on: its CPU affinity mask where the system has one (a `taskset -c 0`
    /// or a container's cpuset lowers it; the machine's core count would oversubscribe it), else the online
    /// cores.
    static var availableCores: Int {
        let count = Int(t5_affinity_cores())
        return count > 0 ? count : ProcessInfo.processInfo.activeProcessorCount
    }

    /// Work (in multiply-adds) below which a loop stays on the calling thread: about what handing a part to
    /// a spinning worker costs. Tests set it to 0 to force the parallel paths on tiny models. Atomic like
    /// `threads`.
    static var minimumCost: Int {
        get { minimumCostValue.load(ordering: .relaxed) }
        set { minimumCostValue.store(newValue, ordering: .relaxed) }
    }
    private static let minimumCostValue = Atomic<Int>(20_000)

    /// Runs `body(part)` for part in 0..<parts on up to `threads` threads; parts = 1 runs inline. The parts
    /// write disjoint slices of buffers the caller owns for the duration of the call.
    ///
    /// A call made while the pool is serving another (a nested call from inside a part, or a second
    /// request on another thread) runs its parts one after the other on its own thread.
    @inline(__always)
    static func run(_ parts: Int, _ body: (Int) -> Void) {
        if parts <= 1 || threads <= 1 {
            for p in 0..<max(parts, 0) { body(p) }
            return
        }
        withoutActuallyEscaping(body) { body in
            if !WorkerPool.shared.run(parts: parts, helpers: min(parts, threads) - 1, body) {
                for p in 0..<parts { body(p) }
            }
        }
    }

    /// Splits `0..<count` into `threads` contiguous chunks whose sizes are multiples of `granule` (except the
    /// last) when the work (`cost` multiply-adds) is worth a thread hand-off.
    @inline(__always)
    static func chunks(_ count: Int, granule: Int = 1, cost: Int) -> Int {
        let minimumCost = minimumCost
        let byCost = minimumCost == 0 ? Int.max : max(1, cost / minimumCost)
        return max(1, min(threads, byCost, (count + granule - 1) / granule))
    }
}

/// Hands a non-Sendable value to `Parallel.run`'s workers, which only touch disjoint memory.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
}
