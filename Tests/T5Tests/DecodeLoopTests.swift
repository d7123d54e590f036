import Foundation
import Testing
@testable import T5

/// The slot cache and the decode loop: sequences of very different output lengths decoded together each get
/// what they get alone, a finished row stops costing decoder work at once, and cancellation stops the loop
/// within a step.
@Suite struct DecodeLoopTests {
    static var digits: String { InferenceHardeningTests.digits }

    /// Inputs of the digits model whose outputs have very different lengths ("reverse: 3" → "3", the long
    /// one → eight digits: the model reverses short inputs only).
    static let texts = ["reverse: 3", "reverse: 3 1 4 1 5 9 2 6 5 3 5", "reverse: 2 7", "reverse: 8 1 8 2 8 4 5 9"]

    @Test(arguments: [1, 3]) func aMixedBatchGivesEachInputWhatItGetsAloneAndDropsFinishedRows(beams: Int) throws {
        let model = try T5Model(directory: URL(fileURLWithPath: Self.digits))
        var o = GenerationOptions()
        o.maxNewTokens = 60
        o.numBeams = beams
        let ids = try Self.texts.map { try model.inputIDs($0) }
        let progress = DecodeProgress()
        let batch = try model.generate(ids: ids, options: o, progress: progress)
        var stepsAlone = [Int]()
        for (i, input) in ids.enumerated() {
            let alone = DecodeProgress()
            let single = try model.generate(ids: [input], options: o, progress: alone)
            stepsAlone.append(alone.steps)
            #expect(batch[i].map(\.ids) == single[0].map(\.ids), "input \(i)")
            for (a, b) in zip(batch[i], single[0]) { #expect(abs(a.score - b.score) < 1e-4, "input \(i): \(a.score) vs \(b.score)") }
        }
        // The outputs' lengths differ several times over (greedy: "3" and "5 1 4 2 9 5 3 6").
        let lengths = batch.map { $0[0].ids.count }
        #expect(lengths.max()! >= 3 * lengths.min()!, "\(lengths)")
        // Every input's rows run exactly the steps it runs alone, and no more: the batch runs as many steps as
        // its longest input, and rows only while their input is unfinished.
        #expect(progress.steps == stepsAlone.max())
        #expect(progress.rows == stepsAlone.reduce(0, +) * beams, "rows run \(progress.rows), alone \(stepsAlone)")
        #expect(progress.rows < ids.count * beams * progress.steps)
    }

    @Test func greedyRowsRunOnePerGeneratedToken() throws {
        // A greedy row runs once per token it generates (its eos included), then leaves.
        let model = try T5Model(directory: URL(fileURLWithPath: Self.digits))
        let progress = DecodeProgress()
        let out = try model.generate(ids: Self.texts.map { try model.inputIDs($0) }, options: GenerationOptions(), progress: progress)
        #expect(progress.rows == out.reduce(0) { $0 + $1[0].ids.count })
        #expect(progress.steps == out.map { $0[0].ids.count }.max())
    }

    @Test(arguments: [1, 2]) func aCancelledGenerateStopsEarly(beams: Int) async throws {
        let model = try T5Model(directory: URL(fileURLWithPath: Self.digits))
        var o = GenerationOptions()
        o.maxNewTokens = 3000
        o.minNewTokens = 3000  // eos banned: 3000 steps unless cancelled
        o.numBeams = beams
        let options = o, progress = DecodeProgress()
        let task = Task { try model.generate(ids: [[5, 6, 1]], options: options, progress: progress) }
        // Cancelled from a thread of its own once 5 steps have run: the concurrency pool's threads may all be
        // busy with other tests' decoding.
        let canceller = Thread {
            while progress.steps < 5 { usleep(200) }
            task.cancel()
        }
        canceller.start()
        await #expect(throws: T5Error.cancelled) { _ = try await task.value }
        #expect(progress.steps >= 5 && progress.steps < 3000, "\(progress.steps) steps")
    }

    @Test func cancellingAStreamsConsumingTaskStopsItsDecoder() async throws {
        let model = try T5Model(directory: URL(fileURLWithPath: Self.digits))
        var o = GenerationOptions()
        o.maxNewTokens = 20_000
        o.minNewTokens = 20_000
        let (stream, producer) = model.streamAndTask("reverse: 3 1 4", options: o)
        let consumer = Task {
            var seen = 0
            for try await _ in stream { seen += 1 }
            return seen
        }
        try await Task.sleep(nanoseconds: 50_000_000)
        consumer.cancel()
        _ = try? await consumer.value
        let generated = await producer.value
        #expect(generated < 20_000, "the decoder ran to max_new_tokens after its consumer was cancelled")
    }

    // MARK: KVCache

    func cache(initialPositions: Int = 2) throws -> (KVCache, T5Model) {
        let model = try T5Model(directory: URL(fileURLWithPath: Self.digits))
        let encoded = try model.encode([model.inputIDs("reverse: 1 2"), model.inputIDs("reverse: 3")])
        return (try KVCache(model: model, encoded: encoded, initialPositions: initialPositions), model)
    }

    /// Appends `count` positions to `slot` whose keys and values in every block are `tag · 1000 + layer · 100 + position`
    /// (values negated).
    func append(_ cache: KVCache, _ slot: KVCache.Slot, tag: Int, count: Int) throws {
        try cache.reserve(slot, adding: count)
        let start = cache.length(of: slot)
        for layer in 0..<cache.layers {
            for p in start..<(start + count) {
                let x = Float(tag * 1000 + layer * 100 + p)
                (cache.keys(of: slot, layer: layer) + p * cache.width).update(repeating: x, count: cache.width)
                (cache.values(of: slot, layer: layer) + p * cache.width).update(repeating: -x, count: cache.width)
            }
        }
        cache.advance(slot, by: count)
    }

    /// The tags of the slot's positions, read back (nil where a position is not uniformly one tag's).
    func tags(_ cache: KVCache, _ slot: KVCache.Slot) -> [Int?] {
        (0..<cache.length(of: slot)).map { p in
            var tag: Int?
            for layer in 0..<cache.layers {
                let k = cache.keys(of: slot, layer: layer) + p * cache.width, v = cache.values(of: slot, layer: layer) + p * cache.width
                let x = k[0], t = (Int(x) - layer * 100 - p) / 1000
                let uniform = (0..<cache.width).allSatisfy { k[$0] == x && v[$0] == -x }
                if !uniform || Float(t * 1000 + layer * 100 + p) != x || (tag != nil && tag != t) { return nil }
                tag = t
            }
            return tag
        }
    }

    @Test func admitReleaseAndLengths() throws {
        let (cache, _) = try cache()
        let slots = try cache.admit(inputs: [0, 1, 1])
        #expect(Set(slots).count == 3 && cache.liveCount == 3)
        #expect(slots.map(cache.length(of:)) == [0, 0, 0])
        #expect(slots.map(cache.input(of:)) == [0, 1, 1])
        try append(cache, slots[0], tag: 1, count: 1)
        try append(cache, slots[2], tag: 3, count: 5)  // past the 2 initial positions: grows to 5 (then 10)
        #expect(slots.map(cache.length(of:)) == [1, 0, 5])
        #expect(tags(cache, slots[2]) == [3, 3, 3, 3, 3])
        try append(cache, slots[2], tag: 3, count: 1)
        #expect(cache.capacity == 10)
        #expect(tags(cache, slots[2]) == [3, 3, 3, 3, 3, 3])
        cache.release(slots[1])
        #expect(cache.liveCount == 2)
        // A new slot starts empty, whatever buffers it reuses, and reads its own encoder row.
        let again = try cache.admit(input: 0)
        #expect(cache.length(of: again) == 0 && cache.input(of: again) == 0 && cache.liveCount == 3)
        #expect(tags(cache, slots[0]) == [1] && tags(cache, slots[2]) == [3, 3, 3, 3, 3, 3])
    }

    @Test func reorderCopiesWhatBeamsContinue() throws {
        let (cache, _) = try cache()
        let s = try cache.admit(inputs: [0, 0, 1, 1])
        for (i, slot) in s.enumerated() { try append(cache, slot, tag: i + 1, count: i + 1) }
        // Beams 0 and 1 both continue beam 0, beam 2 continues beam 1: all read before any is written.
        try cache.reorder([s[0], s[1], s[2]], from: [s[0], s[0], s[1]])
        #expect(tags(cache, s[0]) == [1])
        #expect(tags(cache, s[1]) == [1])
        #expect(tags(cache, s[2]) == [2, 2])
        #expect(cache.input(of: s[2]) == 0, "a slot continues its source's encoder row")
        #expect(tags(cache, s[3]) == [4, 4, 4, 4], "a slot not reordered is unchanged")
        // The two continuations of beam 0 do not share memory: writing one leaves the other.
        try append(cache, s[1], tag: 7, count: 1)
        try append(cache, s[0], tag: 8, count: 2)
        #expect(tags(cache, s[0]) == [1, 8, 8])
        #expect(tags(cache, s[1]) == [1, 7])
        // A slot continuing one that is not itself reordered (it keeps its contents) copies it.
        try cache.reorder([s[3]], from: [s[2]])
        try append(cache, s[3], tag: 9, count: 1)
        #expect(tags(cache, s[2]) == [2, 2])
        #expect(tags(cache, s[3]) == [2, 2, 9])
        // A permutation swaps contents.
        try cache.reorder([s[0], s[1]], from: [s[1], s[0]])
        #expect(tags(cache, s[0]) == [1, 7] && tags(cache, s[1]) == [1, 8, 8])
    }

    @Test func anAdmissionThatCannotFitThrowsBeforeAllocating() throws {
        let (cache, _) = try cache(initialPositions: 1 << 40)
        #expect(throws: T5Error.self) { _ = try cache.admit(input: 0) }
        #expect(cache.liveCount == 0)
    }
}
