import ArgumentParser
import Foundation
import T5

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write DIR/report.html: the charts of a training run or a t5 tune study.",
        discussion: """
            DIR is a training run's --out (it holds metrics.jsonl: loss against steps and tokens, learning rate, \
            tokens/s, evaluation metrics per task) or a t5 tune study (every trial's curves on one chart with the \
            pruned ones grey, each hyperparameter against the metric, and the leaderboard). The page is \
            self-contained: inline SVG, no scripts. Prints the file's path.
            """)

    @Argument(help: ArgumentHelp("A run or study directory.", valueName: "DIR")) var directory: String
    @OptionGroup var output: QuietOption

    func run() throws {
        output.apply()
        let dir = URL(fileURLWithPath: directory)
        let body: String
        let title: String
        if let study = try Study.load(from: dir) {
            title = "t5 tune study \(dir.lastPathComponent)"
            body = try studyBody(study, dir)
        } else {
            let metrics = dir.appendingPathComponent("metrics.jsonl")
            guard FileManager.default.fileExists(atPath: metrics.path) else {
                throw T5Error.missingFile(path: "\(metrics.path) (DIR must be a training run's --out or a t5 tune --out)")
            }
            title = "t5 run \(dir.lastPathComponent)"
            body = runBody(try RunMetrics(contentsOf: metrics))
        }
        let page = """
            <!doctype html>
            <html><head><meta charset="utf-8"><title>\(escape(title))</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1180px; }
            .charts { display: flex; flex-wrap: wrap; gap: 12px; }
            svg.chart { background: #fff; border: 1px solid #ddd; }
            svg text { font: 11px system-ui, sans-serif; fill: #333; }
            svg text.title { font-size: 13px; font-weight: 600; }
            svg .axis line { stroke: #333; } svg line.grid { stroke: #eee; }
            table { border-collapse: collapse; margin-top: 16px; } td, th { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; }
            tr.muted td { color: #999; }
            </style></head><body>
            <h1>\(escape(title))</h1>
            \(body)
            </body></html>

            """
        let url = dir.appendingPathComponent("report.html")
        try AtomicFile.write(Data(page.utf8), to: url)
        print(url.path)
    }

    /// One run: losses against steps and tokens, learning rate, tokens/s, evaluation metrics per task.
    func runBody(_ m: RunMetrics) -> String {
        func pts<T>(_ xs: [T], _ x: (T) -> Double, _ y: (T) -> Double?) -> [(x: Double, y: Double)] {
            xs.compactMap { e in y(e).map { (x(e), $0) } }
        }
        // Per-step figures are averaged over 1% of the run, so that a long run's curves stay readable.
        let window = max(1, m.steps.count / 100)
        let smoothing = window > 1 ? " (mean of \(window) steps)" : ""
        let trainLoss = smoothed(pts(m.steps, { Double($0.step) }, \.loss), window: window)
        let validLoss = pts(m.evaluations, { Double($0.step) }, \.loss)
        var charts = [
            Chart(title: "Loss" + smoothing, xLabel: "step", yLabel: "cross-entropy", series: [
                .init(name: "train", points: trainLoss, id: "train"),
                .init(name: "valid", points: validLoss, markers: true, id: "valid")]),
            Chart(title: "Loss against tokens", xLabel: "tokens trained on (input + target)", yLabel: "cross-entropy", series: [
                .init(name: "train", points: smoothed(pts(m.steps, { Double($0.tokens) }, \.loss), window: window), id: "train"),
                .init(name: "valid", points: pts(m.evaluations, { Double(m.tokens(at: $0.step)) }, \.loss), markers: true, id: "valid")]),
            Chart(title: "Learning rate", xLabel: "step", yLabel: "lr", series: [.init(name: "lr", points: pts(m.steps, { Double($0.step) }, \.learningRate), id: "lr")], legend: false),
            Chart(title: "Throughput" + smoothing, xLabel: "step", yLabel: "tokens/s", series: [.init(name: "tokens/s", points: smoothed(pts(m.steps, { Double($0.step) }, \.tokensPerSecond), window: window), id: "tokens_per_s")], legend: false, includeZero: true),
        ]
        if !m.evaluations.isEmpty {
            var series = [Chart.Series]()
                        series.append(.init(name: "token accuracy", points: pts(m.evaluations, { Double($0.step) }, \.tokenAccuracy), markers: true, id: "token_accuracy"))
            let em = pts(m.evaluations, { Double($0.step) }, \.exactMatch)
            if !em.isEmpty { series.append(.init(name: "exact match", points: em, markers: true, id: "exact_match")) }
            let names = m.evaluations.flatMap { $0.tasks.map(\.name) }
            for name in names.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } } {
                let acc = m.evaluations.compactMap { e in e.tasks.first { $0.name == name }?.tokenAccuracy.map { (Double(e.step), $0) } }
                series.append(.init(name: "\(name) accuracy", points: acc, markers: true, id: "task:\(name):token_accuracy"))
                let tem = m.evaluations.compactMap { e in e.tasks.first { $0.name == name }?.exactMatch.map { (Double(e.step), $0) } }
                if !tem.isEmpty { series.append(.init(name: "\(name) EM", points: tem, markers: true, id: "task:\(name):exact_match")) }
            }
            charts.append(Chart(title: "Evaluation", xLabel: "step", yLabel: "fraction", series: series, includeZero: true))
        }
        let last = m.steps.last
        var summary = "<p>\(m.steps.count) steps logged"
        if let last { summary += ", \(last.tokens.formatted()) tokens" }
        if let e = m.evaluations.last, let loss = e.loss { summary += String(format: "; last evaluation (step %d): loss %.4f", e.step, loss) }
        return summary + ".</p>\n<div class=\"charts\">\n" + charts.map(\.svg).joined(separator: "\n") + "\n</div>"
    }

    /// A study: every trial's curves on one chart (pruned and failed ones grey), each hyperparameter against
    /// the metric, and the leaderboard.
    func studyBody(_ study: Study, _ dir: URL) throws -> String {
        let lowerIsBetter = study.metric != "exact-match"
        let best = StudyRunner.best(study, lowerIsBetter: lowerIsBetter)?.id
        var evalSeries = [Chart.Series](), trainSeries = [Chart.Series]()
        for t in study.trials {
            let url = StudyFiles.trialDirectory(dir, t.id).appendingPathComponent("metrics.jsonl")
            guard let m = try? RunMetrics(contentsOf: url) else { continue }
            let muted = t.status == .pruned || t.status == .failed
            let name = "trial \(t.id)" + (t.id == best ? " (best)" : "")
            let y: (RunMetrics.Evaluation) -> Double? = lowerIsBetter ? { $0.loss } : { $0.exactMatch }
            evalSeries.append(.init(name: name, points: m.evaluations.compactMap { e in y(e).map { (Double(e.step), $0) } },
                                    muted: muted, markers: true, id: "\(t.id)"))
            // Averaged over 1% of the longest run, as in a run's report.
            let window = max(1, study.rungs.last.map { $0 / 100 } ?? 1)
            trainSeries.append(.init(name: name, points: smoothed(m.steps.compactMap { s in s.loss.map { (Double(s.step), $0) } }, window: window),
                                     muted: muted, id: "\(t.id)"))
        }
        var charts = [
            Chart(title: "\(study.metric) of every trial (grey: pruned or failed)", xLabel: "step", yLabel: study.metric, series: evalSeries),
            Chart(title: "Training loss of every trial" + ((study.rungs.last ?? 0) >= 200 ? " (mean of \((study.rungs.last ?? 0) / 100) steps)" : ""), xLabel: "step", yLabel: "cross-entropy", series: trainSeries),
        ]
        // Each hyperparameter against the metric at the trial's last rung.
        let names = study.trials.first?.parameters.map(\.name) ?? []
        for name in names {
            var numeric = true
            var categories = [String]()
            for t in study.trials {
                guard let p = t.parameters.first(where: { $0.name == name }) else { continue }
                if p.number == nil { numeric = false }
                if !categories.contains(p.value) { categories.append(p.value) }
            }
            if categories.count < 2 { continue }
            let values = study.trials.compactMap { t -> (x: Double, y: Double, muted: Bool, id: Int)? in
                guard let p = t.parameters.first(where: { $0.name == name }), let m = t.results.last ?? nil, m.isFinite else { return nil }
                let x = numeric && categories.count > 3 ? p.number! : Double(categories.firstIndex(of: p.value)!)
                return (x, m, t.status == .pruned || t.status == .failed, t.id)
            }
            let positive = values.allSatisfy { $0.x > 0 }
            let spread = (values.map(\.x).max() ?? 1) / max(values.map(\.x).min() ?? 1, .leastNonzeroMagnitude)
            let logX = numeric && categories.count > 3 && positive && spread > 50
            let series = [
                Chart.Series(name: "complete or running", points: values.filter { !$0.muted }.map { ($0.x, $0.y) }, dots: true, id: "\(name):kept"),
                Chart.Series(name: "pruned or failed", points: values.filter(\.muted).map { ($0.x, $0.y) }, muted: true, dots: true, id: "\(name):pruned"),
            ]
            charts.append(Chart(title: "\(name) against \(study.metric)", xLabel: logX ? "\(name) (log scale)" : name, yLabel: study.metric,
                                series: series, logX: logX, xCategories: numeric && categories.count > 3 ? nil : categories))
        }
        var table = "<table><tr><th>rank</th><th>trial</th><th>status</th><th>steps</th><th>\(escape(study.metric))</th>"
            + names.map { "<th>\(escape($0))</th>" }.joined() + "<th>wall s</th></tr>\n"
        for (i, t) in StudyRunner.ranked(study, lowerIsBetter: lowerIsBetter).enumerated() {
            let metric = (t.results.last ?? nil).map { String(format: "%.4f", $0) } ?? "-"
            table += "<tr class=\"\(t.status == .pruned || t.status == .failed ? "muted" : "")\"><td>\(i + 1)</td><td>\(t.id)</td><td>\(t.status.rawValue)</td><td>\(t.steps)</td><td>\(metric)</td>"
                + names.map { n in "<td>\(escape(t.parameters.first { $0.name == n }?.value ?? ""))</td>" }.joined()
                + String(format: "<td>%.1f</td></tr>\n", t.wallSeconds)
        }
        table += "</table>"
        let steps = study.trials.reduce(0) { $0 + $1.steps }
        let intro = "<p>\(study.trials.count) trials, \(study.strategy) (rungs at \(study.rungs.map(String.init).joined(separator: ", ")) steps), \(steps) steps trained; ranked on \(escape(study.metric)).</p>"
        return intro + "\n<div class=\"charts\">\n" + charts.map(\.svg).joined(separator: "\n") + "\n</div>\n" + table
    }
}
