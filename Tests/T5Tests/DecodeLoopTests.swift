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

    @Test func slotsOfTheirOwnLengthsAndPositionsComputeWhatEachDoesAlone() throws {
        // Two inputs through one decoder: first a teacher-forced call in which the rows have 3 and 1 tokens, then
        // one token per live slot per call, each slot at its own position, the shorter one leaving when done.
        // Every logit must be what each sequence gets in a decoder of its own, fed all at once.
        let name = "t5v11-gated-gelu"
        let model = try Fixtures.model(name)
        let ref = try Fixtures.reference(ModelReference.self, "reference/\(name).json")
        let byLength = ref.greedy.sorted { $0.ids.count < $1.ids.count }
        let cases = [try #require(byLength.first { $0.ids.count >= 4 }), try #require(byLength.last)]
        try #require(cases[1].ids.count > cases[0].ids.count + 2 && cases[0].input_ids != cases[1].input_ids)
        let v = model.config.vocabSize, start = model.config.decoderStartTokenID
        let sequences = cases.map { [start] + $0.ids.dropLast() }
        func logits(_ state: DecoderState, row: Int, count: Int = 1) -> [Float] {
            Array(UnsafeBufferPointer(start: state.logits.pointer + row * v, count: count * v))
        }
        var alone = [[Float]]()
        for (c, sequence) in zip(cases, sequences) {
            let state = try DecoderState(model: model, encoded: model.encode([c.input_ids]), rowInput: [0], capacity: sequence.count)
            try state.forward(tokens: sequence)
            alone.append(logits(state, row: 0, count: sequence.count))
        }

        let state = try DecoderState(model: model, encoded: model.encode(cases.map(\.input_ids)), initialPositions: 2)
        let slots = try state.cache.admit(inputs: [0, 1])
        var fed = [3, 1], together: [[Float]] = [[], []]
        try state.forward(slots: slots, tokens: Array(sequences[0][0..<3]) + [sequences[1][0]], counts: [3, 1])
        together[0] += logits(state, row: 0, count: 3)
        together[1] += logits(state, row: 3)
        while true {
            let live = [0, 1].filter { fed[$0] < sequences[$0].count }
            if live.isEmpty { break }
            try state.forward(slots: live.map { slots[$0] }, tokens: live.map { sequences[$0][fed[$0]] }, counts: live.map { _ in 1 })
            for (row, i) in live.enumerated() {
                together[i] += logits(state, row: row)
                fed[i] += 1
            }
        }
        for i in 0..<2 {
            #expect(state.cache.length(of: slots[i]) == sequences[i].count)
            #expect(together[i].count == alone[i].count)
            let diff = zip(together[i], alone[i]).map { abs($0 - $1) }.max() ?? .infinity
            #expect(diff < 1e-4, "sequence \(i): max |diff| \(diff)")
        }
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
