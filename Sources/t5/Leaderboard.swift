import Foundation
import T5

/// A finished (or stopped) study's results: the leaderboard on stdout (or as JSON), OUT/best.json,
/// OUT/best-command.txt (the best configuration as a ready-to-run command) and the best model in OUT/best/.
struct Leaderboard {
    let study: Study
    let directory: URL
    let objective: TrialObjective
    let base: [String]
    let maxSteps: Int
    let seed: UInt64

    var lowerIsBetter: Bool { study.metric != "exact-match" }

    struct Row: Encodable {
        let rank: Int
        let trial: Int
        let status: String
        let steps: Int
        let metric: Double?
        let parameters: [String: String]
        let wall_s: Double
        let launches: Int
        let error: String?
    }

    struct Summary: Encodable {
        let metric: String
        let strategy: String
        let rungs: [Int]
        let best: Row?
        let best_command: String?
        let trials: [Row]
        let steps_trained: Int
        let trial_wall_s: Double
        let disk_bytes: Int
    }

    func rows() -> [Row] {
        StudyRunner.ranked(study, lowerIsBetter: lowerIsBetter).enumerated().map { i, t in
            Row(rank: i + 1, trial: t.id, status: t.status.rawValue, steps: t.steps, metric: (t.results.last ?? nil).flatMap { $0.isFinite ? $0 : nil },
                parameters: Dictionary(t.parameters.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }),
                wall_s: (t.wallSeconds * 10).rounded() / 10, launches: t.launches, error: t.error)
        }
    }

    /// The best trial's command, training the whole budget into OUT/final.
    func bestCommand(_ trial: Study.Trial) -> String {
        var a = ["t5", objective.rawValue] + base + ["--out", directory.appendingPathComponent("final").path, "--steps", "\(maxSteps)"]
        if !trial.parameters.contains(where: { $0.name == "seed" }) { a += ["--seed", "\(seed)"] }
        if study.metric == "exact-match" { a.append("--eval-generate") }
        a += trial.arguments
        return a.map(shellQuoted).joined(separator: " ")
    }

    func publish(json: Bool) throws(T5Error) {
        let rows = rows()
        let best = StudyRunner.best(study, lowerIsBetter: lowerIsBetter)
        var command: String?
        if let best {
            command = bestCommand(best)
            let bestRow = rows.first { $0.trial == best.id }
            try AtomicFile.write(try encodeJSON(bestRow) + Data("\n".utf8), to: directory.appendingPathComponent("best.json"))
            try AtomicFile.write(Data((command! + "\n").utf8), to: directory.appendingPathComponent("best-command.txt"))
            try publishModel(best.id)
        }
        let steps = study.trials.reduce(0) { $0 + $1.steps }
        let wall = study.trials.reduce(0) { $0 + $1.wallSeconds }
        let disk = StudyFiles.diskUse(directory)
        if json {
            try printJSON(Summary(metric: study.metric, strategy: study.strategy, rungs: study.rungs, best: rows.first { $0.trial == best?.id },
                                  best_command: command, trials: rows, steps_trained: steps, trial_wall_s: (wall * 10).rounded() / 10, disk_bytes: disk))
            return
        }
        let names = study.trials.first?.parameters.map(\.name) ?? []
        var table = [["rank", "trial", "status", "steps", study.metric] + names + ["wall s"]]
        for r in rows {
            table.append(["\(r.rank)", "\(r.trial)", r.status, "\(r.steps)", r.metric.map { String(format: "%.4f", $0) } ?? "-"]
                         + names.map { r.parameters[$0] ?? "" } + [String(format: "%.1f", r.wall_s)])
        }
        let widths = table[0].indices.map { c in table.map { $0[c].count }.max() ?? 0 }
        for line in table {
            print(line.enumerated().map { c, cell in cell.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
        for r in rows where r.error != nil { print("trial \(r.trial) failed: \(r.error!)") }
        print(String(format: "%d trials, %d steps trained in %.1f s of trial time; %@ on disk in %@", study.trials.count, steps, wall,
                     MemoryBudget.format(disk), directory.path))
        if let command { print("best: \(command)") }
    }

    /// OUT/best/: the best trial's model files (hard links), replaced whole.
    private func publishModel(_ id: Int) throws(T5Error) {
        let source = StudyFiles.trialDirectory(directory, id)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: source.path)) ?? []).filter {
            !$0.hasPrefix(".") && !$0.hasPrefix("checkpoint-") && $0 != "metrics.jsonl"
        }
        guard names.contains("model.safetensors") else { return }
        let target = directory.appendingPathComponent("best")
        try? FileManager.default.removeItem(at: target)
        try OutputDirectory.writeAtomically(target, option: "--out") { (temporary: URL) throws(T5Error) in
            for name in names {
                do {
                    try FileManager.default.linkItem(at: source.appendingPathComponent(name), to: temporary.appendingPathComponent(name))
                } catch {
                    do { try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: temporary.appendingPathComponent(name)) } catch {
                        throw .writeFailed(path: target.path, reason: error.localizedDescription)
                    }
                }
            }
        }
    }
}
