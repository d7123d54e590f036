import Foundation
import T5

/// Drives a study: starts trial processes (`t5 <objective> ... --json`), at most `jobs` at a time, reads their
/// summaries when they exit, and asks the schedule what to run next. A trial process that fails (an error, a
/// crash, the kernel's out-of-memory killer) fails that trial only. The study is saved after every change.
struct StudyRunner {
    let directory: URL
    var study: Study
    let schedule: SuccessiveHalving
    let plan: TrialPlan
    let base: [String]
    let configurations: [[(String, JSONValue)]]
    let maxTrials: Int
    let jobs: Int
    let threads: Int
    let seed: UInt64
    let lowerIsBetter: Bool
    let metricName: String
    let evalGenerate: Bool
    let objective: TrialObjective

    private struct Running {
        let process: Process
        let started: Date
        let handles: [FileHandle]
    }
    private var running: [Int: Running] = [:]
    private var freed = Set<Int>()

    init(directory: URL, study: Study, schedule: SuccessiveHalving, plan: TrialPlan, base: [String],
         configurations: [[(String, JSONValue)]], maxTrials: Int, jobs: Int, threads: Int, seed: UInt64,
         lowerIsBetter: Bool, metricName: String, evalGenerate: Bool, objective: TrialObjective) {
        self.directory = directory
        self.study = study
        self.schedule = schedule
        self.plan = plan
        self.base = base
        self.configurations = configurations
        self.maxTrials = maxTrials
        self.jobs = jobs
        self.threads = threads
        self.seed = seed
        self.lowerIsBetter = lowerIsBetter
        self.metricName = metricName
        self.evalGenerate = evalGenerate
        self.objective = objective
    }

    private enum Job {
        case start(Int)
        case `continue`(Int)
        case promote(Int, rung: Int)
    }

    /// Runs until every trial is complete, pruned or failed, or a signal arrives (then the running trials
    /// save their step and the study stays resumable).
    mutating func run() throws(T5Error) {
        stopOrphans()
        try study.save(in: directory)
        while true {
            if let signal = Signals.shared.received {
                stopAll(forwarding: signal)
                try reap()
                try study.save(in: directory)
                return
            }
            try reap()
            try prune()
            while running.count < jobs, let job = nextJob() {
                try launch(job)
            }
            if running.isEmpty { break }
            usleep(50_000)
        }
        // Nothing can be promoted any more: trials waiting at a rung are pruned.
        for i in study.trials.indices where study.trials[i].status == .paused {
            study.trials[i].status = .pruned
        }
        freeUnneeded()
        try study.save(in: directory)
    }

    // MARK: - Deciding

    /// The schedule's view: each trial's results, lower is better.
    private var records: [Int: SuccessiveHalving.Record] {
        var r = [Int: SuccessiveHalving.Record]()
        for t in study.trials where !t.results.isEmpty {
            r[t.id] = .init(results: t.results.map { $0.map { lowerIsBetter ? $0 : -$0 } }, promoted: t.promoted || t.status == .failed)
        }
        return r
    }

    private func nextJob() -> Job? {
        // A trial a killed `t5 tune` left running continues first (from its checkpoint).
        if let orphan = study.trials.first(where: { $0.status == .running && running[$0.id] == nil }) {
            return .continue(orphan.id)
        }
        if let (trial, rung) = schedule.promotion(records) { return .promote(trial, rung: rung) }
        if study.trials.count < maxTrials { return .start(study.trials.count + 1) }
        return nil
    }

    private mutating func prune() throws(T5Error) {
        let r = records
        var changed = false
        for i in study.trials.indices where study.trials[i].status == .paused {
            let t = study.trials[i]
            guard schedule.isPruned(t.id, r, maxTrials: maxTrials) else { continue }
            study.trials[i].status = .pruned
            changed = true
            note("trial \(t.id) pruned at step \(t.steps): \(metricName) \(format(t.results.last ?? nil))")
        }
        if changed {
            freeUnneeded()
            try study.save(in: directory)
        }
    }

    /// The best trial so far: the most rungs reached, then the best metric there.
    static func best(_ study: Study, lowerIsBetter: Bool) -> Study.Trial? {
        ranked(study, lowerIsBetter: lowerIsBetter).first { !$0.results.isEmpty }
    }

    /// Every trial, best first; trials without a result last, by number.
    static func ranked(_ study: Study, lowerIsBetter: Bool) -> [Study.Trial] {
        func key(_ t: Study.Trial) -> Double {
            guard let m = t.results.last ?? nil, !m.isNaN else { return .infinity }
            return lowerIsBetter ? m : -m
        }
        return study.trials.sorted { a, b in
            if a.results.count != b.results.count { return a.results.count > b.results.count }
            if key(a) != key(b) { return key(a) < key(b) }
            return a.id < b.id
        }
    }

    /// Deletes the checkpoints no promotion can need: of trials complete, pruned or failed, except the best.
    private mutating func freeUnneeded() {
        let best = Self.best(study, lowerIsBetter: lowerIsBetter)?.id
        for t in study.trials where [.complete, .pruned, .failed].contains(t.status) && t.id != best && !freed.contains(t.id) {
            StudyFiles.freeCheckpoints(directory, t.id)
            freed.insert(t.id)
        }
    }

    // MARK: - Processes

    private mutating func launch(_ job: Job) throws(T5Error) {
        let id: Int
        switch job {
        case .start(let n):
            id = n
            let configuration = configurations[n - 1]
            let parameters = configuration.map { name, value in
                Study.Parameter(name: name, value: value.argument ?? TrialPlan.show(value), number: value.double)
            }
            let trialSeed = configuration.first { $0.0 == "seed" }.flatMap { $0.1.double.map { UInt64($0) } } ?? seed
            study.trials.append(Study.Trial(id: n, parameters: parameters, arguments: plan.arguments(configuration),
                                            seed: trialSeed, status: .running))
        case .continue(let n):
            id = n
        case .promote(let n, let rung):
            id = n
            let i = n - 1
            study.trials[i].promoted = true
            study.trials[i].targetRung = rung
            study.trials[i].status = .running
            note("trial \(n) promoted to rung \(rung) (\(schedule.rungs[rung]) steps)")
        }
        let i = id - 1
        let trial = study.trials[i]
        let trialDirectory = StudyFiles.trialDirectory(directory, id)
        var arguments = [objective.rawValue] + base + [
            "--out", trialDirectory.path, "--steps", "\(schedule.rungs.last ?? 0)", "--threads", "\(threads)", "--json", "--quiet",
        ]
        if !plan.space.parameters.contains(where: { $0.name == "seed" }) { arguments += ["--seed", "\(seed)"] }
        if trial.targetRung < schedule.rungs.count - 1 { arguments += ["--pause-at", "\(schedule.rungs[trial.targetRung])"] }
        if evalGenerate { arguments.append("--eval-generate") }
        arguments += trial.arguments
        if FileManager.default.fileExists(atPath: trialDirectory.path) { arguments.append("--resume") }

        let logURL = StudyFiles.log(directory, id), summaryURL = StudyFiles.summary(directory, id)
        if !FileManager.default.fileExists(atPath: logURL.path) { FileManager.default.createFile(atPath: logURL.path, contents: nil) }
        FileManager.default.createFile(atPath: summaryURL.path, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logURL.path), let summary = FileHandle(forWritingAtPath: summaryURL.path) else {
            throw .writeFailed(path: logURL.path, reason: "cannot open the trial's log")
        }
        log.seekToEndOfFile()
        log.write(Data("t5 tune: launch \(trial.launches + 1): t5 \(arguments.map(shellQuoted).joined(separator: " "))\n".utf8))

        let process = Process()
        process.executableURL = Self.executable
        process.arguments = arguments
        process.standardOutput = summary
        process.standardError = log
        do { try process.run() } catch {
            throw .writeFailed(path: trialDirectory.path, reason: "cannot start the trial: \(error.localizedDescription)")
        }
        running[id] = Running(process: process, started: Date(), handles: [log, summary])
        study.trials[i].launches += 1
        study.trials[i].status = .running
        study.trials[i].pid = process.processIdentifier
        if case .start = job {
            note("trial \(id) started: \(trial.arguments.joined(separator: " "))")
        } else if case .continue = job {
            note("trial \(id) continues from its checkpoint")
        }
        try study.save(in: directory)
    }

    private mutating func reap() throws(T5Error) {
        for (id, r) in running where !r.process.isRunning {
            running[id] = nil
            for h in r.handles { try? h.close() }
            let i = id - 1
            study.trials[i].pid = nil
            study.trials[i].wallSeconds += Date().timeIntervalSince(r.started)
            let status = r.process.terminationStatus
            let bySignal = r.process.terminationReason == .uncaughtSignal
            let summary = try? JSONSerialization.jsonObject(with: Data(contentsOf: StudyFiles.summary(directory, id))) as? [String: Any]
            if let step = summary?["step"] as? Int { study.trials[i].steps = step }
            let target = schedule.rungs[study.trials[i].targetRung]
            if !bySignal && status == 0 {
                // A segment whose run had already finished (its process outlived a killed `t5 tune`) evaluates
                // nothing new: its evaluation at the rung is in its metrics log.
                let metric = summary?[metricName == "exact-match" ? "eval_exact_match" : "eval_loss"] as? Double
                    ?? evaluation(id, at: target)
                if study.trials[i].steps < target || metric == nil {
                    fail(i, metric == nil ? "its summary has no \(metricName)" : "it stopped at step \(study.trials[i].steps) of \(target)")
                } else {
                    study.trials[i].results.append(metric)
                    study.trials[i].promoted = false
                    let last = study.trials[i].targetRung == schedule.rungs.count - 1
                    study.trials[i].status = last ? .complete : .paused
                    note("trial \(id) \(last ? "complete" : "reached rung \(study.trials[i].targetRung)") at step \(target): \(metricName) \(format(metric))")
                }
            } else if Signals.shared.received != nil && (bySignal || status == 130 || status == 143) {
                // Stopped with the study: it continues from its checkpoint on the next run.
            } else {
                fail(i, lastError(id) ?? (bySignal ? "killed by signal \(status)" : "exit status \(status)"))
            }
            freeUnneeded()
            try study.save(in: directory)
        }
    }

    private func evaluation(_ id: Int, at step: Int) -> Double? {
        let url = StudyFiles.trialDirectory(directory, id).appendingPathComponent("metrics.jsonl")
        guard let e = (try? RunMetrics(contentsOf: url))?.evaluations.last(where: { $0.step == step }) else { return nil }
        return metricName == "exact-match" ? e.exactMatch : e.loss
    }

    private mutating func fail(_ i: Int, _ reason: String) {
        study.trials[i].status = .failed
        study.trials[i].error = reason
        note("trial \(study.trials[i].id) failed: \(reason)")
    }

    /// The trial's last `t5:` error line since its last launch.
    private func lastError(_ id: Int) -> String? {
        guard let text = try? String(contentsOf: StudyFiles.log(directory, id), encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n")
        let sinceLaunch = lines.lastIndex { $0.hasPrefix("t5 tune: launch") }.map { lines[($0 + 1)...] } ?? lines[...]
        return sinceLaunch.last { $0.hasPrefix("t5: ") }.map { String($0.dropFirst(4)) }
    }

    /// Stops the running trials: each saves its current step (finetune's signal handling) and exits.
    /// A Ctrl-C reached the whole process group already; a SIGTERM to `t5 tune` alone is passed on.
    private mutating func stopAll(forwarding signal: Int32) {
        if signal == SIGTERM {
            for r in running.values { kill(r.process.processIdentifier, SIGTERM) }
        }
        for r in running.values { r.process.waitUntilExit() }
    }

    /// Trial processes a killed `t5 tune` left behind are stopped (they save their step) before their
    /// trials are continued, so two processes never train one trial.
    private func stopOrphans() {
        for t in study.trials where t.status == .running {
            guard let pid = t.pid, let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                  String(decoding: cmdline, as: UTF8.self).contains(StudyFiles.trialDirectory(directory, t.id).path) else { continue }
            note("trial \(t.id): stopping the process \(pid) a previous t5 tune left running")
            kill(pid, SIGTERM)
            // Gone, or a zombie nobody reaps yet (its checkpoint is saved either way); at most two minutes.
            for _ in 0..<1200 {
                guard let stat = FileManager.default.contents(atPath: "/proc/\(pid)/stat"),
                      !String(decoding: stat, as: UTF8.self).contains(") Z ") else { break }
                usleep(100_000)
            }
        }
    }

    /// This program (trials are the same binary).
    static let executable: URL = {
        let link = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        if FileManager.default.isExecutableFile(atPath: link.path), link.path != "/proc/self/exe" { return link }
        return Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
    }()

    private func format(_ metric: Double?) -> String {
        metric.map { String(format: "%.4f", $0) } ?? "not finite"
    }
}

/// `text` quoted for a POSIX shell when it needs it.
func shellQuoted(_ text: String) -> String {
    let safe = text.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }
    return safe && !text.isEmpty ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
