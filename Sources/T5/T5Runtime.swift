/// Process-wide runtime settings.
public enum T5Runtime {
    /// This runtime's version (`t5 --version`).
    public static let version = "0.6.0"

    /// Number of threads OpenBLAS may use for the dense products.
    public static func setThreads(_ n: Int) {
        GEMM.setThreads(n)
    }
}
