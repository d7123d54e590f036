/// Process-wide runtime settings.
public enum T5Runtime {
    /// Number of threads OpenBLAS may use for the dense products.
    public static func setThreads(_ n: Int) {
        GEMM.setThreads(n)
    }
}
