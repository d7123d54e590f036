import Foundation

/// How much memory a request may still take, and the overflow-checked arithmetic that sizes it.
///
/// Buffers are sized from user-controlled numbers (input length, beams, `max_new_tokens`, config sizes), so
/// every size is computed with overflow checks and compared with what the machine can give before anything
/// is allocated: a request that cannot fit is refused with one line saying how much it needs, instead of
/// aborting in the allocator or thrashing.
public enum MemoryBudget {
    /// Bytes the process may still allocate: `$T5_MEMORY_LIMIT` when set (bytes, or with a K/M/G suffix),
    /// else the smaller of Linux's `MemAvailable` and the room left under the cgroup's `memory.max`.
    public static func available() -> Int {
        if let limit = ProcessInfo.processInfo.environment["T5_MEMORY_LIMIT"].flatMap(parseSize) { return limit }
        var bytes = physicalMemory()
        if let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let line = meminfo.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
           let kib = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) {
            bytes = min(bytes, kib.multipliedReportingOverflow(by: 1024).partialValue)
        }
        if let max = cgroupValue("memory.max"), let current = cgroupValue("memory.current") {
            bytes = min(bytes, Swift.max(0, max - current))
        }
        return bytes
    }

    /// Throws `.tooLarge` when `bytes` (nil: overflowed while counting) exceed what is available.
    public static func require(_ bytes: Int?, for what: @autoclosure () -> String) throws(T5Error) {
        let available = available()
        guard let bytes, bytes <= available else {
            throw .tooLarge(what: what(), bytes: bytes, available: available)
        }
    }

    /// The bytes of a (factors...) fp32 buffer, nil on overflow.
    public static func floats(_ factors: Int...) -> Int? {
        floats(factors)
    }

    /// The bytes of a (factors...) fp32 buffer, nil on overflow.
    public static func floats(_ factors: [Int]) -> Int? {
        product([4] + factors)
    }

    /// The product of `factors`, nil when it overflows or a factor is negative.
    public static func product(_ factors: [Int]) -> Int? {
        var result = 1
        for f in factors {
            guard f >= 0 else { return nil }
            let (p, overflow) = result.multipliedReportingOverflow(by: f)
            if overflow { return nil }
            result = p
        }
        return result
    }

    /// The sum of `terms`, nil when any is nil or the sum overflows.
    public static func sum(_ terms: [Int?]) -> Int? {
        var result = 0
        for t in terms {
            guard let t else { return nil }
            let (s, overflow) = result.addingReportingOverflow(t)
            if overflow { return nil }
            result = s
        }
        return result
    }

    /// "1.5 GiB"-style text.
    public static func format(_ bytes: Int) -> String {
        let b = Double(bytes)
        if bytes >= 1 << 30 { return String(format: "%.1f GiB", b / Double(1 << 30)) }
        if bytes >= 1 << 20 { return String(format: "%.1f MiB", b / Double(1 << 20)) }
        if bytes >= 1 << 10 { return String(format: "%.1f KiB", b / Double(1 << 10)) }
        return "\(bytes) B"
    }

    static func parseSize(_ text: String) -> Int? {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = text.trimmingCharacters(in: .whitespaces).uppercased()
        if digits.hasSuffix("B") { digits.removeLast() }
        var scale = 1
        if let last = digits.last, let unit = units[last] { scale = unit; digits.removeLast() }
        guard let n = Int(digits), n >= 0 else { return nil }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: scale)
        return overflow ? nil : bytes
    }

    private static func physicalMemory() -> Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return Int.max }
        return pages.multipliedReportingOverflow(by: size).overflow ? Int.max : pages * size
    }

    /// A number from the process's cgroup v2 directory (named by the "0::" line of /proc/self/cgroup);
    /// "max" and absence mean no limit.
    private static func cgroupValue(_ name: String) -> Int? {
        guard let membership = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
              let line = membership.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) else { return nil }
        let directory = line.dropFirst(3).trimmingCharacters(in: .whitespaces)
        guard let text = try? String(contentsOfFile: "/sys/fs/cgroup\(directory)/\(name)", encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
