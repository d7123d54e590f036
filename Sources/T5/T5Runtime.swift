/// Process-wide runtime settings.
public enum T5Runtime {
    /// This runtime's version (`t5 --version`).
    public static let version = "0.6.0"

    /// Sets how many threads, the calling one included, run the matrix products and every other parallel
    /// loop (the runtime's own worker pool; OpenBLAS itself always runs on one thread, so that its threads
    /// and the pool's never compete for the cores). Values below 1 count as 1.
    public static func setThreads(_ n: Int) {
        GEMM.setThreads(n)
    }

    /// The thread count `setThreads` last set; before any call, one per core this process may run on (its
    /// CPU affinity mask: `taskset` and container cpusets lower it).
    public static var threads: Int { Parallel.threads }

    /// The cores this process may run on (its CPU affinity mask, else the online cores).
    public static var availableCores: Int { Parallel.availableCores }
}
