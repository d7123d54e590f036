import CKernels
import Foundation
import Synchronization

/// The runtime's own threads (`WorkerPool`). OpenBLAS runs single-threaded and every parallel loop goes
/// through here, so BLAS threads and ours never compete for the cores (OpenBLAS's idle threads spin and
/// yield, which slowed memory-bound decode steps measurably).
///
/// Settings have two layers: the process default (`setDefaultThreads`, which `T5Runtime.setThreads` calls)
/// and a scoped override (`withSettings`), a task-local that holds for the closure and every task it
/// creates, so a scheduler and a trainer in one process each run with their own thread count. The worker
/// threads do not see task-locals: every loop reads the settings once, on the calling thread.
enum Parallel {
    /// A scoped override; nil fields fall through to the process default.
    struct Settings: Sendable {
        var threads: Int?
        var minimumCost: Int?
    }

    @TaskLocal private static var scoped = Settings()

    /// Thread count, the caller's included: the scoped override, else the process default.
    static var threads: Int { scoped.threads ?? defaultThreads.load(ordering: .relaxed) }

    /// Atomic (relaxed), because it may be set while other threads compute: a caller reads it once per loop,
    /// and buffers sized from an earlier reading (the decoder's attention scratch) are checked against what
    /// they hold.
    private static let defaultThreads = Atomic<Int>(availableCores)

    /// Sets the process default thread count (values below 1 count as 1); a scoped override still wins.
    static func setDefaultThreads(_ n: Int) {
        defaultThreads.store(max(1, n), ordering: .relaxed)
    }

    /// The cores this process may run on: its CPU affinity mask where the system has one (a `taskset -c 0`
    /// or a container's cpuset lowers it; the machine's core count would oversubscribe it), else the online
    /// cores.
    static var availableCores: Int {
        let count = Int(t5_affinity_cores())
        return count > 0 ? count : ProcessInfo.processInfo.activeProcessorCount
    }

    /// Work (in multiply-adds) below which a loop stays on the calling thread: about what handing a part to
    /// a spinning worker costs. Tests scope it to 0 to force the parallel paths on tiny models.
    static var minimumCost: Int { scoped.minimumCost ?? defaultMinimumCost }
    static let defaultMinimumCost = 20_000

    /// Runs `body` with `threads` (at least 1) and `minimumCost` in force for this task, the tasks it
    /// creates and the loops they run; nil keeps the enclosing setting. The previous settings are back when
    /// `body` returns.
    static func withSettings<R>(threads: Int? = nil, minimumCost: Int? = nil, _ body: () throws -> R) rethrows -> R {
        try $scoped.withValue(merged(threads: threads, minimumCost: minimumCost), operation: body)
    }

    /// `withSettings` for asynchronous work.
    static func withSettings<R>(
        threads: Int? = nil, minimumCost: Int? = nil, isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> R
    ) async rethrows -> R {
        try await $scoped.withValue(merged(threads: threads, minimumCost: minimumCost), operation: body, isolation: isolation)
    }

    /// The scoped override in force here. A thread the runtime starts does not inherit task-locals: it
    /// takes this along and runs under `withScope`.
    static var currentScope: Settings { scoped }

    /// Runs `body` under `settings` (a `currentScope` taken on another thread).
    static func withScope<R>(_ settings: Settings, _ body: () throws -> R) rethrows -> R {
        try $scoped.withValue(settings, operation: body)
    }

    private static func merged(threads: Int?, minimumCost: Int?) -> Settings {
        var settings = scoped
        if let threads { settings.threads = max(1, threads) }
        if let minimumCost { settings.minimumCost = max(0, minimumCost) }
        return settings
    }

    /// Runs `body(part)` for part in 0..<parts on up to `threads` threads; parts = 1 runs inline. The parts
    /// write disjoint slices of buffers the caller owns for the duration of the call. For work items that
    /// are not slices of one range (tensors, (row, head) pairs); a range goes through `forEachSlice`.
    ///
    /// A call made while the pool is serving another (a nested call from inside a part, or a second
    /// request on another thread) runs its parts one after the other on its own thread.
    @inline(__always)
    static func run(_ parts: Int, _ body: (Int) -> Void) {
        run(parts, threads: threads, body)
    }

    @inline(__always)
    private static func run(_ parts: Int, threads: Int, _ body: (Int) -> Void) {
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
        chunks(count, granule: granule, cost: cost, settings: (threads, minimumCost))
    }

    @inline(__always)
    private static func chunks(_ count: Int, granule: Int, cost: Int, settings: (threads: Int, minimumCost: Int)) -> Int {
        let byCost = settings.minimumCost == 0 ? Int.max : max(1, cost / settings.minimumCost)
        return max(1, min(settings.threads, byCost, (count + granule - 1) / granule))
    }

    /// Part `part` of `0..<count` cut into `parts` slices: each slice rounded up to a multiple of `granule`,
    /// so all but the last are whole granules (whole panels of a product), and trailing parts may be empty.
    @inline(__always)
    static func slice(_ part: Int, of parts: Int, count: Int, granule: Int = 1) -> Range<Int> {
        let per = ((count + parts - 1) / parts + granule - 1) / granule * granule
        return min(count, part * per) ..< min(count, (part + 1) * per)
    }

    /// Runs `body` on contiguous slices of `0..<count` (see `slice`), on several threads when the work
    /// (`cost` multiply-adds or elementwise operations) is worth a hand-off; on this thread, in one call,
    /// otherwise. Empty slices are skipped. The slices must touch disjoint memory.
    @inline(__always)
    static func forEachSlice(_ count: Int, granule: Int = 1, cost: Int, _ body: (Range<Int>) -> Void) {
        forEachSlice(count, granule: granule, cost: cost, scratchSlots: .max) { _, range in body(range) }
    }

    /// `forEachSlice` that also passes the part index, for work that needs a scratch of its own per part:
    /// at most `scratchSlots` parts run (the scratch held may have been sized for an earlier thread count),
    /// numbered 0..<parts, each on one thread at a time.
    @inline(__always)
    static func forEachSlice(
        _ count: Int, granule: Int = 1, cost: Int, scratchSlots: Int, _ body: (_ part: Int, Range<Int>) -> Void
    ) {
        guard count > 0 else { return }
        let settings = (threads: threads, minimumCost: minimumCost)
        let parts = max(1, min(scratchSlots, chunks(count, granule: granule, cost: cost, settings: settings)))
        if parts == 1 {
            body(0, 0..<count)
            return
        }
        run(parts, threads: settings.threads) { part in
            let range = slice(part, of: parts, count: count, granule: granule)
            if !range.isEmpty { body(part, range) }
        }
    }
}

/// Hands a non-Sendable value to `Parallel.run`'s workers, which only touch disjoint memory.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
}
