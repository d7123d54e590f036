import Dispatch
import Foundation

/// The runtime's own threads. OpenBLAS runs single-threaded and every parallel loop goes through here, so
/// BLAS threads and ours never compete for the two cores (OpenBLAS's idle threads spin and yield, which
/// slowed memory-bound decode steps measurably).
enum Parallel {
    /// Worker count; `T5Runtime.setThreads` changes it.
    nonisolated(unsafe) static var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    /// Work (in multiply-adds) below which a loop stays on the calling thread: about what waking a pool
    /// thread costs. Tests set it to 0 to force the parallel paths on tiny models.
    nonisolated(unsafe) static var minimumCost = 20_000

    /// Runs `body(part)` for part in 0..<parts on up to `threads` threads; parts = 1 runs inline.
    @inline(__always)
    static func run(_ parts: Int, _ body: (Int) -> Void) {
        if parts <= 1 {
            body(0)
        } else {
            // The parts write disjoint slices of buffers the caller owns for the duration of the call.
            withoutActuallyEscaping(body) { body in
                let shared = UncheckedSendable(value: body)
                DispatchQueue.concurrentPerform(iterations: parts) { shared.value($0) }
            }
        }
    }

    /// Splits `0..<count` into `threads` contiguous chunks whose sizes are multiples of `granule` (except the
    /// last) when the work (`cost` multiply-adds) is worth a thread hand-off.
    @inline(__always)
    static func chunks(_ count: Int, granule: Int = 1, cost: Int) -> Int {
        let byCost = minimumCost == 0 ? Int.max : max(1, cost / minimumCost)
        return max(1, min(threads, byCost, (count + granule - 1) / granule))
    }
}

/// Hands a non-Sendable value to `Parallel.run`'s workers, which only touch disjoint memory.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
}
