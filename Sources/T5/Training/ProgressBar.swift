import Foundation

/// Renders training progress as one line: `step 120/1000 [####------] 12% loss 2.3141 lr 1.00e-03 3,210 tok/s ETA 4m12s`.
///
/// Speeds and the ETA come from the last `window` steps, so they follow changes in sequence length
/// and ignore the first, slower steps once enough have run.
public struct ProgressBar: Sendable {
    public var width: Int
    public let window: Int
    private var recent: [(seconds: Double, tokens: Int)] = []
    /// The loss shown: an exponential moving average, since single batches are noisy.
    private var smoothedLoss: Double?

    public init(width: Int = 24, window: Int = 20) {
        self.width = width
        self.window = window
    }

    /// Takes in a step and returns the line to show.
    public mutating func update(_ r: StepReport) -> String {
        recent.append((r.seconds, r.inputTokens + r.targetTokens))
        if recent.count > window { recent.removeFirst(recent.count - window) }
        smoothedLoss = smoothedLoss.map { 0.9 * $0 + 0.1 * r.loss } ?? r.loss
        let seconds = recent.reduce(0) { $0 + $1.seconds }
        let tokens = recent.reduce(0) { $0 + $1.tokens }
        let perStep = seconds / Double(max(recent.count, 1))
        let remaining = Double(max(r.totalSteps - r.step, 0)) * perStep
        let fraction = Double(r.step) / Double(max(r.totalSteps, 1))
        let filled = min(width, Int(fraction * Double(width)))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let rate = seconds > 0 ? Double(tokens) / seconds : 0
        return "step \(r.step)/\(r.totalSteps) [\(bar)] \(Int(fraction * 100))% "
            + "loss \(String(format: "%.4f", smoothedLoss ?? r.loss)) lr \(String(format: "%.2e", r.learningRate)) "
            + "\(Self.grouped(Int(rate.rounded()))) tok/s ETA \(Self.duration(remaining))"
    }

    /// `75` → `1m15s`, `3700` → `1h01m`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
        if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return "\(s)s"
    }

    /// `12345` → `12,345`.
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }
}
