import Foundation

/// Everything besides weights and optimizer moments that `--resume` needs to continue a run exactly:
/// the step, the data position, the seed (every random stream is derived from it and the position,
/// see `RandomStream`), and the settings the run must keep. Saved as `trainer_state.json`.
public struct TrainingState: Codable, Sendable, Equatable {
    /// Bumped when the layout changes incompatibly.
    public static let currentVersion = 1

    public var version = TrainingState.currentVersion
    /// Optimizer steps completed.
    public var step: Int
    /// The run's planned optimizer steps.
    public var totalSteps: Int
    /// The seed every random stream is derived from.
    public var seed: UInt64
    /// Data position of the next batch.
    public var pool: Int
    public var batchInPool: Int
    public var drawn: [Int]
    /// With a span-corruption task: its corpus stream's position at the start of the current pool.
    public var corpus: CorpusPosition?
    /// Examples and tokens (input + target, unpadded) trained on so far.
    public var examplesSeen: Int
    public var tokensSeen: Int
    /// Wall-clock seconds spent training so far, across resumed sessions.
    public var elapsedSeconds: Double
    /// Lowest validation loss seen so far, if any evaluation ran.
    public var bestEvalLoss: Double?
    /// Steps skipped for a non-finite loss or gradient norm (absent in files of runs that skipped none).
    public var skippedSteps: Int?
    /// Settings that must be the same to resume (name → value as text), see `RunSignature`.
    public var signature: [String: String]
    /// A description of the random number generation, for readers of the file.
    public var rng = "xoshiro256** seeded by SplitMix64; each stream (shuffle per task and pass, mixture and batch order per pool, dropout per step and micro-batch) seeded from `seed` and its coordinates"

    public var position: DataPosition {
        get { DataPosition(pool: pool, batchInPool: batchInPool, drawn: drawn, corpus: corpus) }
        set {
            pool = newValue.pool
            batchInPool = newValue.batchInPool
            drawn = newValue.drawn
            corpus = newValue.corpus
        }
    }

    public init(step: Int, totalSteps: Int, seed: UInt64, position: DataPosition, examplesSeen: Int, tokensSeen: Int,
                elapsedSeconds: Double, bestEvalLoss: Double?, signature: [String: String]) {
        self.step = step
        self.totalSteps = totalSteps
        self.seed = seed
        pool = position.pool
        batchInPool = position.batchInPool
        drawn = position.drawn
        corpus = position.corpus
        self.examplesSeen = examplesSeen
        self.tokensSeen = tokensSeen
        self.elapsedSeconds = elapsedSeconds
        self.bestEvalLoss = bestEvalLoss
        self.signature = signature
    }

    enum CodingKeys: String, CodingKey {
        case version, step, seed, pool, drawn, rng, signature, corpus
        case totalSteps = "total_steps"
        case batchInPool = "batch_in_pool"
        case examplesSeen = "examples_seen"
        case tokensSeen = "tokens_seen"
        case elapsedSeconds = "elapsed_seconds"
        case bestEvalLoss = "best_eval_loss"
        case skippedSteps = "skipped_steps"
    }

    /// The JSON bytes (keys sorted, indented).
    public func jsonData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding a struct of plain values cannot fail.
        return ((try? encoder.encode(self)) ?? Data()) + Data("\n".utf8)
    }

    /// Checks every field before a resumed run uses it: ranges, and the data position against the step (each
    /// step draws `gradientAccumulation` batches of `batchSize` examples from pools of `poolBatches`
    /// batches), so an edited or damaged file is refused naming the field instead of trapping or
    /// resuming somewhere else.
    func validate(path: String, taskCount: Int, batchSize: Int, poolBatches: Int, gradientAccumulation: Int) throws(T5Error) {
        func bad(_ field: String, _ reason: String) -> T5Error {
            .corruptCheckpoint(path: path, reason: "\(field): \(reason)")
        }
        for (field, value) in [("step", step), ("total_steps", totalSteps), ("pool", pool), ("batch_in_pool", batchInPool),
                               ("examples_seen", examplesSeen), ("tokens_seen", tokensSeen)] where value < 0 {
            throw bad(field, "must be 0 or more, found \(value)")
        }
        if batchInPool >= poolBatches { throw bad("batch_in_pool", "\(batchInPool) is past the \(poolBatches) batches of a pool") }
        if drawn.count != taskCount { throw bad("drawn", "has \(drawn.count) entries for \(taskCount) training tasks") }
        if let negative = drawn.first(where: { $0 < 0 }) { throw bad("drawn", "must be 0 or more, found \(negative)") }
        if !(elapsedSeconds.isFinite && elapsedSeconds >= 0) { throw bad("elapsed_seconds", "must be a finite number of seconds, found \(elapsedSeconds)") }
        if let loss = bestEvalLoss, !(loss.isFinite && loss >= 0) { throw bad("best_eval_loss", "must be finite and non-negative, found \(loss)") }
        if let skipped = skippedSteps, !(0...step).contains(skipped) { throw bad("skipped_steps", "\(skipped) is not within 0...\(step)") }
        let batches = MemoryBudget.product([step, gradientAccumulation])
        let position = MemoryBudget.sum([MemoryBudget.product([pool, poolBatches]), batchInPool])
        if batches == nil || batches != position {
            throw bad("step", "\(step) steps of \(gradientAccumulation) batch(es) do not end at pool \(pool), batch \(batchInPool) (pools of \(poolBatches) batches)")
        }
        let drawnTotal = MemoryBudget.sum(drawn.map { Optional($0) })
        if drawnTotal != MemoryBudget.product([pool, poolBatches, batchSize]) {
            throw bad("drawn", "\(drawn) examples before pool \(pool) do not fill \(pool) pools of \(poolBatches) × \(batchSize)")
        }
        if examplesSeen < step { throw bad("examples_seen", "\(examplesSeen) is fewer than one example per step (\(step))") }
    }

    /// Reads `trainer_state.json`; `path` names it in errors.
    public static func decode(_ data: Data, path: String) throws(T5Error) -> TrainingState {
        let state: TrainingState
        do {
            state = try JSONDecoder().decode(TrainingState.self, from: data)
        } catch {
            throw .corruptCheckpoint(path: path, reason: "unreadable training state: \(error)")
        }
        guard state.version == currentVersion else {
            throw .corruptCheckpoint(path: path, reason: "training state version \(state.version), this runtime reads \(currentVersion)")
        }
        return state
    }
}

/// The settings a resumed run must share with the run that saved the checkpoint, as name → text.
///
/// Anything that changes which batches come next or how an update is computed is here; the number
/// of steps, evaluation and saving frequency are not (a run may be extended).
public enum RunSignature {
    /// The first setting that differs, as "NAME was A, now B", or nil when all agree.
    public static func firstDifference(saved: [String: String], current: [String: String]) -> String? {
        for key in Set(saved.keys).union(current.keys).sorted() where saved[key] != current[key] {
            return "\(key) was \(saved[key] ?? "unset"), now \(current[key] ?? "unset")"
        }
        return nil
    }

    /// A stable fingerprint of tokenized examples (FNV-1a over the ids), to notice changed data files.
    public static func fingerprint(_ examples: [TokenizedExample]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ value: Int) {
            var v = UInt64(truncatingIfNeeded: value)
            for _ in 0..<8 {
                hash ^= v & 0xFF
                hash &*= 0x0000_0100_0000_01B3
                v >>= 8
            }
        }
        for e in examples {
            mix(e.inputIDs.count)
            e.inputIDs.forEach(mix)
            mix(e.targetIDs.count)
            e.targetIDs.forEach(mix)
        }
        return "\(examples.count) examples, fnv1a \(String(hash, radix: 16))"
    }
}
