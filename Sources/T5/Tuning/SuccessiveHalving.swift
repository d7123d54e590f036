import Foundation

/// Asynchronous successive halving (ASHA; Li, Jamieson, Rostamizadeh, Gonina, Ben-tzur, Hardt, Recht, Talwalkar,
/// "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020, Algorithm 2).
///
/// Rung k trains to `minSteps · η^k` steps (the last rung to `maxSteps`). Whenever a worker is free, the
/// highest rung holding a trial that is in the top ⌊n/η⌋ of its n results and not yet promoted gives that
/// trial one rung more; otherwise a new trial starts at rung 0. Nobody waits for a rung to fill: a decision
/// uses the results there are. Random search is the same machine with a single rung at `maxSteps`.
package struct SuccessiveHalving: Sendable, Equatable {
    /// Steps at the end of each rung, increasing; the last is the full budget.
    package let rungs: [Int]
    package let reduction: Int

    /// Rungs `minSteps · reduction^k` below `maxSteps`, then `maxSteps`.
    package init(minSteps: Int, maxSteps: Int, reduction: Int) {
        precondition(minSteps >= 1 && minSteps <= maxSteps && reduction >= 2)
        var rungs = [Int]()
        var steps = minSteps
        while steps < maxSteps {
            rungs.append(steps)
            steps *= reduction
        }
        rungs.append(maxSteps)
        self.rungs = rungs
        self.reduction = reduction
    }

    /// One rung at `steps`: random search.
    package init(fullBudget steps: Int) {
        rungs = [steps]
        reduction = 2
    }

    /// A trial's results: `results[k]` is its metric at rung k (lower is better; callers negate a metric to
    /// maximize; nil or NaN counts as the worst), `promoted` says whether it was sent past its last result.
    package struct Record: Sendable, Equatable {
        package var results: [Double?]
        package var promoted: Bool

        package init(results: [Double?], promoted: Bool) {
            self.results = results
            self.promoted = promoted
        }
    }

    /// The trial to promote now, and the rung it moves to, if any (ASHA's get_job, the promotion branch).
    /// Only trials whose last result is at rung k (and not already promoted) can move to k + 1.
    package func promotion(_ trials: [Int: Record]) -> (trial: Int, rung: Int)? {
        for k in stride(from: rungs.count - 2, through: 0, by: -1) {
            let ranked = ranking(at: k, trials)
            for (trial, _) in ranked.prefix(ranked.count / reduction) {
                if let r = trials[trial], r.results.count == k + 1, !r.promoted { return (trial, k + 1) }
            }
        }
        return nil
    }

    /// Whether a trial waiting at rung k can never be promoted, however the study goes on: at most `maxTrials`
    /// reach rung 0 and at most ⌊n/η⌋ of a rung's n move up, so at most U_k trials ever reach rung k
    /// (U_0 = maxTrials, U_{k+1} = ⌊U_k/η⌋), and results only join a rung, never leave it, so a trial ranked
    /// ⌊U_k/η⌋ or lower stays out of the top. Its checkpoint can then be deleted.
    package func isPruned(_ trial: Int, _ trials: [Int: Record], maxTrials: Int) -> Bool {
        guard let record = trials[trial], !record.promoted, !record.results.isEmpty else { return false }
        let k = record.results.count - 1
        if k == rungs.count - 1 { return false }
        var bound = maxTrials
        for _ in 0..<k { bound /= reduction }
        let rank = ranking(at: k, trials).firstIndex { $0.trial == trial } ?? 0
        return rank >= bound / reduction
    }

    /// The trials with a result at rung k, best first (ties by trial number, so the order is reproducible).
    package func ranking(at k: Int, _ trials: [Int: Record]) -> [(trial: Int, metric: Double)] {
        trials.compactMap { (id, r) -> (trial: Int, metric: Double)? in
            guard r.results.count > k else { return nil }
            let m = r.results[k] ?? .infinity
            return (id, m.isNaN ? .infinity : m)
        }.sorted { $0.metric != $1.metric ? $0.metric < $1.metric : $0.trial < $1.trial }
    }
}
