import Foundation

/// The random streams of a training run. Each is a `SeededGenerator` seeded from the run's seed and
/// the stream's coordinates (task and pass, pool, step), so any point of a run can be regenerated
/// from a few counters — which is all `--resume` needs to continue exactly — and nothing depends
/// on the Swift standard library's unspecified shuffling algorithm.
enum RandomStream: UInt64 {
    /// The order of one pass over one task's examples.
    case shuffle = 1
    /// Which task each example of a pool comes from.
    case mixture = 2
    /// The order of a pool's batches.
    case batchOrder = 3
    /// Dropout masks of one micro-batch.
    case dropout = 4
    /// Weights of a model initialized from scratch.
    case initialization = 5
    /// The noise mask of one span-corruption chunk (by its index in the run, and 0 for training, 1 for
    /// validation).
    case spanCorruption = 6

    /// The generator for this stream at the given coordinates.
    func generator(seed: UInt64, _ a: Int = 0, _ b: Int = 0) -> SeededGenerator {
        // SplitMix64's finalizer over the mixed coordinates: nearby inputs give unrelated seeds.
        func mix(_ x: UInt64) -> UInt64 {
            var z = x &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let derived = mix(mix(mix(mix(seed) ^ rawValue) ^ UInt64(truncatingIfNeeded: a)) ^ UInt64(truncatingIfNeeded: b))
        return SeededGenerator(seed: derived)
    }
}

extension SeededGenerator {
    /// Uniform in 0..<n (n > 0), by the high half of a 64×64-bit product (Lemire's method without the
    /// rejection step; the bias, below n/2⁶⁴, is immaterial here and the sequence stays fixed).
    mutating func uniformIndex(below n: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(n)).high)
    }

    /// Uniform in [0, 1) with 53 random bits.
    mutating func uniformUnit() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A Fisher–Yates permutation of 0..<n.
    mutating func permutation(_ n: Int) -> [Int] {
        var order = Array(0..<n)
        if n < 2 { return order }
        for i in stride(from: n - 1, to: 0, by: -1) {
            order.swapAt(i, uniformIndex(below: i + 1))
        }
        return order
    }
}

/// Where a run is in its data: enough to regenerate the next batch exactly.
public struct DataPosition: Sendable, Equatable {
    /// Index of the current pool (pools are consecutive groups of batches, see `BatchSampler`).
    public var pool: Int
    /// Batches already taken from the current pool.
    public var batchInPool: Int
    /// Examples drawn from each task before the current pool.
    public var drawn: [Int]
    /// With a span-corruption task: where its corpus stream was when the current pool started, so that a
    /// resumed run reads on from there instead of from the start.
    public var corpus: CorpusPosition?

    public init(pool: Int = 0, batchInPool: Int = 0, drawn: [Int], corpus: CorpusPosition? = nil) {
        self.pool = pool
        self.batchInPool = batchInPool
        self.drawn = drawn
        self.corpus = corpus
    }
}

/// Deals training batches from a mixture of tasks, deterministically from a seed.
///
/// Each task is read in passes, each pass in its own shuffled order. Examples are drawn in pools of
/// `batchSize × poolBatches` (fewer for small data): each slot of a pool picks a task at the
/// mixture's rates and takes that task's next example. A pool is then sorted by length and cut into
/// batches, so a batch holds examples of similar lengths and little padding (the "bucketing" of
/// T5's and fairseq's input pipelines), and its batches are dealt in shuffled order.
///
/// A span-corruption task (`TaskData.corpus`) is streamed in corpus order instead of shuffled: its k-th
/// draw is chunk k, corrupted with the noise mask of stream `spanCorruption` at k. Its examples all have
/// the same lengths, so within a pool they keep their draw order and only the batch order is shuffled.
public struct BatchSampler {
    public let data: TrainingData
    public let batchSize: Int
    public let seed: UInt64
    /// Batches per pool.
    public let poolBatches: Int
    /// The position of the next batch.
    public private(set) var position: DataPosition

    /// Batches of the current pool, in dealing order, with each example's raw chunk for corpus tasks.
    private var poolContents: [[(example: TokenizedExample, source: [Int]?)]] = []
    private var poolBuilt = false
    /// `drawn` after the current pool.
    private var nextDrawn: [Int] = []
    /// Per task, the pass whose order is cached, and that order.
    private var passes: [(pass: Int, order: [Int])]
    /// The chunk streams of corpus tasks (shared by copies of the sampler; they seek by chunk index).
    private let streams: [Int: CorpusChunks]

    /// Batches per pool for `data`. Small data: a pool is about one pass over everything, so an example
    /// rarely repeats within it.
    static func effectivePoolBatches(_ poolBatches: Int, data: TrainingData, batchSize: Int) -> Int {
        max(1, min(poolBatches, data.exampleCount / batchSize))
    }

    public init(data: TrainingData, batchSize: Int, seed: UInt64, poolBatches: Int = 50, position: DataPosition? = nil) {
        precondition(batchSize > 0 && poolBatches > 0)
        self.data = data
        self.batchSize = batchSize
        self.seed = seed
        self.poolBatches = Self.effectivePoolBatches(poolBatches, data: data, batchSize: batchSize)
        self.position = position ?? DataPosition(drawn: Array(repeating: 0, count: data.tasks.count))
        passes = Array(repeating: (pass: -1, order: []), count: data.tasks.count)
        var streams = [Int: CorpusChunks]()
        for (t, task) in data.tasks.enumerated() {
            if let corpus = task.corpus { streams[t] = corpus.chunks() }
        }
        self.streams = streams
    }

    /// The next batch: `batchSize` examples, unpadded. Throws when a corpus file cannot be read.
    public mutating func next() throws(T5Error) -> TrainingBatch {
        if !poolBuilt { try buildPool() }
        let members = poolContents[position.batchInPool]
        position.batchInPool += 1
        if position.batchInPool == poolContents.count {
            // Advance to the next pool: its draws start where this pool's ended.
            position.drawn = nextDrawn
            position.corpus = streams.values.first?.position
            position.pool += 1
            position.batchInPool = 0
            poolBuilt = false
        }
        var batch = TrainingBatch(inputIDs: [], targetIDs: [])
        for member in members {
            batch.inputIDs.append(member.example.inputIDs)
            batch.targetIDs.append(member.example.targetIDs)
            batch.sourceIDs.append(member.source ?? [])
        }
        return batch
    }

    /// The `k`-th example drawn from `task` (0-based over the whole run), with its raw chunk for a corpus.
    private mutating func example(task: Int, draw k: Int) throws(T5Error) -> (example: TokenizedExample, source: [Int]?) {
        if let stream = streams[task], let corpus = data.tasks[task].corpus {
            try stream.seek(toChunk: k, hint: position.corpus)
            let chunk = try stream.next()
            return (corpus.corruption.corrupt(chunk, index: k, seed: seed, tokenizer: corpus.tokenizer), chunk)
        }
        let n = data.tasks[task].examples.count
        let pass = k / n
        if passes[task].pass != pass {
            var generator = RandomStream.shuffle.generator(seed: seed, task, pass)
            passes[task] = (pass, generator.permutation(n))
        }
        return (data.tasks[task].examples[passes[task].order[k % n]], nil)
    }

    private mutating func buildPool() throws(T5Error) {
        let size = batchSize * poolBatches
        var drawn = position.drawn
        var mixture = RandomStream.mixture.generator(seed: seed, position.pool)
        let cumulative = data.rates.reduce(into: [Double]()) { $0.append(($0.last ?? 0) + $1) }
        var members = [(example: TokenizedExample, source: [Int]?, order: Int)]()
        members.reserveCapacity(size)
        for slot in 0..<size {
            var task = 0
            if data.tasks.count > 1 {
                let u = mixture.uniformUnit() * (cumulative.last ?? 1)
                task = cumulative.firstIndex(where: { u < $0 }) ?? (data.tasks.count - 1)
                // A zero-rate task is never picked: `u < cumulative` fails for it and the one before.
            }
            let drawnExample = try example(task: task, draw: drawn[task])
            members.append((drawnExample.example, drawnExample.source, slot))
            drawn[task] += 1
        }
        nextDrawn = drawn
        // Sort by input length, then target length, then draw order (a total order: deterministic).
        func lengths(_ m: (example: TokenizedExample, source: [Int]?, order: Int)) -> (Int, Int, Int) {
            (m.example.inputIDs.count, m.example.targetIDs.count, m.order)
        }
        members.sort { lengths($0) < lengths($1) }
        var batches = stride(from: 0, to: size, by: batchSize).map { start in
            members[start..<min(start + batchSize, size)].map { (example: $0.example, source: $0.source) }
        }
        var order = RandomStream.batchOrder.generator(seed: seed, position.pool)
        batches = order.permutation(batches.count).map { batches[$0] }
        poolContents = batches
        poolBuilt = true
    }
}

/// Fixed batches for evaluation: every example once, sorted by length so batches pad little.
public enum EvaluationBatches {
    /// Batches of `(task, index)` pairs over every example of `data`.
    public static func make(_ data: TrainingData, batchSize: Int) -> [[(task: Int, index: Int)]] {
        var all = [(task: Int, index: Int)]()
        for (t, task) in data.tasks.enumerated() {
            precondition(task.corpus == nil, "evaluation data holds examples, not a streamed corpus (SpanCorruptionCorpus.validationExamples)")
            for i in task.examples.indices { all.append((t, i)) }
        }
        func key(_ m: (task: Int, index: Int)) -> (Int, Int, Int, Int) {
            let e = data.tasks[m.task].examples[m.index]
            return (e.inputIDs.count, e.targetIDs.count, m.task, m.index)
        }
        all.sort { key($0) < key($1) }
        return stride(from: 0, to: all.count, by: batchSize).map { Array(all[$0..<min($0 + batchSize, all.count)]) }
    }
}
