/// Runtime settings: the process defaults, and thread counts scoped to one piece of work.
public enum T5Runtime {
    /// This runtime's version (`t5 --version`).
    public static let version = "0.6.0"

    /// Sets the process default for how many threads, the calling one included, run the matrix products
    /// and every other parallel loop (the runtime's own worker pool; OpenBLAS itself always runs on one
    /// thread, so that its threads and the pool's never compete for the cores). Values below 1 count as 1.
    /// Work inside `withThreads` uses that scope's count instead.
    public static func setThreads(_ n: Int) {
        Parallel.setDefaultThreads(n)
    }

    /// The thread count in force here: the innermost `withThreads` around this code, else what `setThreads`
    /// last set, else one per core this process may run on (its CPU affinity mask: `taskset` and container
    /// cpusets lower it).
    public static var threads: Int { Parallel.threads }

    /// Runs `body` with `n` threads (values below 1 count as 1) for every model call inside it, the tasks it
    /// creates included, without changing the process default or other tasks' counts: a server and a
    /// trainer in one process each scope their own. Results are bit-identical between runs with the same
    /// count (the split decides the order of floating-point sums).
    public static func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        try Parallel.withSettings(threads: n, body)
    }

    /// `withThreads` for asynchronous work.
    public static func withThreads<R>(
        _ n: Int, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> R
    ) async rethrows -> R {
        try await Parallel.withSettings(threads: n, isolation: isolation, body)
    }

    /// The cores this process may run on (its CPU affinity mask, else the online cores).
    public static var availableCores: Int { Parallel.availableCores }
}
