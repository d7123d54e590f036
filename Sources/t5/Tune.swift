import ArgumentParser
import Foundation
import T5
import Yams

struct Tune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search hyperparameters: run trials of a training command, with random search or ASHA.",
        discussion: """
            --space is a JSON or YAML file whose keys are the trial command's option names and whose values are \
            distributions ({"choice": [...]}, {"uniform": [low, high]}, {"log-uniform": [low, high]}, \
            {"int-uniform": [low, high]}) or fixed values. Each trial is a separate `t5 <objective> ... --json` \
            process in OUT/trials/N; --jobs of them run at once with --threads-per-job threads each. ASHA \
            (asynchronous successive halving) trains trials to rungs of --min-steps x --reduction-factor^k steps \
            up to --max-steps and continues the top 1/reduction of each rung from their checkpoints. \
            OUT/study.json records the study after every change: rerunning the same command resumes it. \
            --objective distill trains --model as the student (give --teacher after --); --objective pretrain \
            trains on --train text and ranks on --valid text (span corruption). \
            Results: a leaderboard, OUT/best.json, OUT/best-command.txt and the best model in OUT/best/.
            """)

    enum Strategy: String, ExpressibleByArgument, CaseIterable { case random, asha }
    enum Metric: String, ExpressibleByArgument, CaseIterable {
        case validLoss = "valid-loss", exactMatch = "exact-match"
    }

    @Option(parsing: .unconditional, help: ArgumentHelp("Model directory or hub name every trial starts from.", valueName: "DIR"))
    var model: String?
    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("Training data, as the trial command takes it; repeatable.", valueName: "[PREFIX=]FILE"))
    var train: [String] = []
    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("Validation data the trials are ranked on; repeatable.", valueName: "[PREFIX=]FILE"))
    var valid: [String] = []
    @Option(parsing: .unconditional, help: ArgumentHelp("Study directory (new, or a study to resume).", valueName: "DIR"))
    var out: String
    @Option(parsing: .unconditional, help: ArgumentHelp("Search space: a .json, .yaml or .yml file.", valueName: "FILE"))
    var space: String
    @Option(parsing: .unconditional, help: "Trials to run (a rerun with more continues the study).") var trials: Int
    @Option(parsing: .unconditional, help: "random, or asha (asynchronous successive halving).") var strategy: Strategy = .asha
    @Option(parsing: .unconditional, help: "Steps of ASHA's first rung.") var minSteps: Int = 10
    @Option(parsing: .unconditional, help: "Steps of a complete trial.") var maxSteps: Int = 90
    @Option(parsing: .unconditional, help: "ASHA's reduction factor: rungs grow by it, and its top 1/N move up.") var reductionFactor: Int = 3
    @Option(parsing: .unconditional, help: "Trials run at once.") var jobs: Int = 1
    @Option(parsing: .unconditional, help: "Threads of each trial (default: the cores divided by --jobs).") var threadsPerJob: Int?
    @Flag(help: "Allow --jobs x --threads-per-job above the core count.") var oversubscribe = false
    @Option(parsing: .unconditional, help: "valid-loss (lower is better) or exact-match (of greedy outputs, higher is better).") var metric: Metric = .validLoss
    @Option(parsing: .unconditional, help: "Seed of the configurations drawn, and of every trial's training (unless the space sets seed).") var seed: UInt64 = 42
    @Option(parsing: .unconditional, help: "The training command trials run.") var objective: TrialObjective = .finetune
    @Flag(help: "Delete the study in --out and start over.") var forceNew = false
    @Argument(parsing: .postTerminator, help: ArgumentHelp(
        "After --: options every trial gets unchanged (distill's --teacher, pretrain's --input-length, ...).",
        valueName: "TRIAL-OPTIONS"))
    var trialOptions: [String] = []
    @Flag(help: "Print the leaderboard as JSON on stdout.") var json = false
    @OptionGroup var output: QuietOption

    static let cores = T5Runtime.availableCores
    var threads: Int { threadsPerJob ?? max(1, Self.cores / jobs) }

    func validate() throws {
        if trials < 1 { throw invalidValue("--trials", "must be at least 1, got \(trials)") }
        if minSteps < 1 { throw invalidValue("--min-steps", "must be at least 1, got \(minSteps)") }
        if maxSteps < minSteps { throw invalidValue("--min-steps", "\(minSteps) is more than --max-steps \(maxSteps)") }
        if reductionFactor < 2 { throw invalidValue("--reduction-factor", "must be at least 2, got \(reductionFactor)") }
        if jobs < 1 { throw invalidValue("--jobs", "must be at least 1, got \(jobs)") }
        if let t = threadsPerJob, t < 1 { throw invalidValue("--threads-per-job", "must be at least 1, got \(t)") }
        if train.isEmpty { throw ValidationError("give at least one --train FILE") }
        if valid.isEmpty {
            throw ValidationError(metric == .exactMatch ? "--metric exact-match needs --valid data" : "t5 tune needs --valid data: trials are ranked on it")
        }
        if objective == .pretrain && metric == .exactMatch {
            throw ValidationError("--metric exact-match needs a labelled task; pretrain trials are ranked on valid-loss")
        }
        for option in trialOptions where option.hasPrefix("--") {
            let name = String(option.dropFirst(2).split(separator: "=", maxSplits: 1)[0])
            if let setter = objective.reserved[name] {
                throw ValidationError("--\(name) after --: every trial's --\(name) is set by \(setter)")
            }
        }
        if jobs * threads > Self.cores && !oversubscribe {
            throw invalidValue("--jobs", "\(jobs) jobs x \(threads) threads is more than the \(Self.cores) cores; lower them, or pass --oversubscribe")
        }
    }

    func run() async throws {
        output.apply()
        let directory = URL(fileURLWithPath: out)
        let modelDirectory = try ModelOptions.resolve(model)
        let searchSpace = try loadSpace()
        let plan = try TrialPlan(objective: objective, space: searchSpace, spacePath: space)
        let base = baseArguments(model: modelDirectory.path)
        try plan.check(base: base + ["--out", directory.appendingPathComponent("trials/check").path])

        let schedule = strategy == .asha
            ? SuccessiveHalving(minSteps: minSteps, maxSteps: maxSteps, reduction: reductionFactor)
            : SuccessiveHalving(fullBudget: maxSteps)
        let signature = try studySignature(model: modelDirectory, plan: plan)
        var study: Study
        if forceNew, (try? Study.load(from: directory)) != nil {
            StudyFiles.removeStudy(in: directory)
        }
        if let saved = try Study.load(from: directory) {
            if let difference = Study.firstDifference(saved: saved.signature, current: signature) {
                throw T5Error.invalidOption(name: "--out", reason: "\(out) holds a study made with different settings: \(difference); pass --force-new to start over")
            }
            study = saved
            note("resuming the study in \(out): \(saved.trials.count) trial\(saved.trials.count == 1 ? "" : "s") so far")
        } else {
            // A study killed before its first save leaves only its lock and an empty trials/.
            try OutputDirectory.requireNew(directory, option: "--out") { $0 == ".lock" || $0 == "trials" }
            study = Study(signature: signature, metric: metric.rawValue, strategy: strategy.rawValue, rungs: schedule.rungs)
        }
        let lock = try StudyFiles.lock(directory)
        defer { close(lock) }

        var runner = StudyRunner(
            directory: directory, study: study, schedule: schedule, plan: plan, base: base,
            configurations: searchSpace.configurations(count: trials, seed: seed), maxTrials: trials,
            jobs: jobs, threads: threads, seed: seed, lowerIsBetter: metric == .validLoss, metricName: metric.rawValue,
            evalGenerate: metric == .exactMatch, objective: objective)
        Signals.shared.deferExit()
        try runner.run()
        study = runner.study
        if Signals.shared.received != nil {
            note("interrupted: the study is saved; rerun the same command to continue")
            return
        }
        try Leaderboard(study: study, directory: directory, objective: objective, base: base, maxSteps: maxSteps, seed: seed)
            .publish(json: json)
    }

    /// The arguments every trial shares (after the command name).
    func baseArguments(model: String) -> [String] {
        var a = [objective.modelFlag, model]
        for t in train { a += [objective.trainFlag, t] }
        for v in valid { a += [objective.validFlag, v] }
        return a + trialOptions
    }

    func loadSpace() throws -> SearchSpace {
        let url = URL(fileURLWithPath: space)
        let ext = url.pathExtension.lowercased()
        if ext == "yaml" || ext == "yml" {
            guard let text = try? String(contentsOf: url, encoding: .utf8) else {
                throw FileManager.default.fileExists(atPath: url.path) ? T5Error.unreadableFile(path: space, reason: "not UTF-8 text") : T5Error.missingFile(path: space)
            }
            let node: Node?
            do { node = try Yams.compose(yaml: text) } catch {
                throw T5Error.invalidOption(name: "--space", reason: "\(space): not YAML: \(String(describing: error).split(separator: "\n").joined(separator: " "))")
            }
            guard let node else { throw T5Error.invalidOption(name: "--space", reason: "\(space): the file is empty") }
            return try SearchSpace(json: try YAMLValue.json(node, path: space), path: space)
        }
        return try SearchSpace(jsonFile: url)
    }

    /// What a rerun must repeat: the objective, model, data (by content), space, strategy, rungs, metric and seed.
    func studySignature(model: URL, plan: TrialPlan) throws(T5Error) -> [[String]] {
        var s: [[String]] = [["objective", objective.rawValue], ["model", model.standardizedFileURL.path]]
        for (i, t) in train.enumerated() { s.append(["train[\(i)]", try StudyFiles.fingerprint(t)]) }
        for (i, v) in valid.enumerated() { s.append(["valid[\(i)]", try StudyFiles.fingerprint(v)]) }
        for p in plan.space.parameters { s.append(["space \(p.name)", TrialPlan.describe(p.distribution)]) }
        if !trialOptions.isEmpty { s.append(["trial options", trialOptions.joined(separator: " ")]) }
        s.append(["strategy", strategy.rawValue])
        s.append(["max-steps", "\(maxSteps)"])
        if strategy == .asha {
            s.append(["min-steps", "\(minSteps)"])
            s.append(["reduction-factor", "\(reductionFactor)"])
        }
        s.append(["metric", metric.rawValue])
        s.append(["seed", "\(seed)"])
        return s
    }
}
