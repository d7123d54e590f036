import Synchronization

/// Counts the work a decode loop has done, readable from another thread while it runs: decoder steps and
/// the rows they ran (a row is one sequence's token in one step). Rows dropped when they finish make
/// `rows` smaller than steps × rows started.
final class DecodeProgress: Sendable {
    private let stepCount = Atomic<Int>(0)
    private let rowCount = Atomic<Int>(0)

    var steps: Int { stepCount.load(ordering: .relaxed) }
    var rows: Int { rowCount.load(ordering: .relaxed) }

    func record(rows: Int) {
        stepCount.add(1, ordering: .relaxed)
        rowCount.add(rows, ordering: .relaxed)
    }
}

/// The one generation loop (CTranslate2's `decode`, `src/decoding.cc`): each iteration runs one decoder step
/// over the rows still live, one token per row at the row's own position, lets the search choose, follows
/// its beam reorders in the cache, and drops the rows it finished, releasing their slots: a finished row
/// costs nothing at later steps. Before each step the calling task's cancellation is checked, so a
/// cancelled `Task` (or a stream whose consumer left, through `onEvent` throwing) stops within a step.
enum DecodeLoop {
    /// Decoder positions a row's cache (and a search's sequence buffers) hold before they first grow:
    /// memory follows the tokens generated, not `max_new_tokens` (which may be huge, waiting for eos).
    static let initialPositions = 64

    /// Runs `search` to its end over `encoded` and returns its output.
    ///
    /// `initialPositions`: the positions each row's cache holds before it first grows. `onEvent` sees every
    /// event as the step makes it; an error it throws ends the loop. Throws `.cancelled` when the calling
    /// task is cancelled, and what the decoder or the search throws.
    static func run<Search: SearchStrategy>(
        _ search: inout Search, model: T5Model, encoded: EncoderOutput, initialPositions: Int,
        progress: DecodeProgress? = nil, onEvent: ((RowEvent) throws(T5Error) -> Void)? = nil
    ) throws(T5Error) -> Search.Output {
        let state = try DecoderState(model: model, encoded: encoded, initialPositions: initialPositions)
        let cache = state.cache
        let rows = search.rowInputs.count
        let slots = try cache.admit(inputs: search.rowInputs)
        var live = Array(0..<rows), finished = [Bool](repeating: false, count: rows)
        var liveSlots = [KVCache.Slot](), tokens = [Int](), ones = [Int](), events = [RowEvent]()
        var moved = [KVCache.Slot](), sources = [KVCache.Slot]()
        liveSlots.reserveCapacity(rows); tokens.reserveCapacity(rows); ones.reserveCapacity(rows)
        while !live.isEmpty {
            if Task.isCancelled { throw .cancelled }
            liveSlots.removeAll(keepingCapacity: true)
            tokens.removeAll(keepingCapacity: true)
            for r in live {
                liveSlots.append(slots[r])
                tokens.append(search.nextToken(of: r))
            }
            if ones.count != live.count { ones = [Int](repeating: 1, count: live.count) }
            try state.forward(slots: liveSlots, tokens: tokens, counts: ones)
            progress?.record(rows: live.count)
            events.removeAll(keepingCapacity: true)
            try search.step(LogitRows(base: state.logits.pointer, rows: live, vocabulary: model.config.vocabSize), events: &events)
            moved.removeAll(keepingCapacity: true)
            sources.removeAll(keepingCapacity: true)
            var anyFinished = false
            for event in events {
                switch event {
                case .token: break
                case let .continues(row, source):
                    moved.append(slots[row])
                    sources.append(slots[source])
                case let .finished(row):
                    finished[row] = true
                    anyFinished = true
                }
                try onEvent?(event)
            }
            if !moved.isEmpty { try cache.reorder(moved, from: sources) }
            if anyFinished {
                for r in live where finished[r] { cache.release(slots[r]) }
                live.removeAll { finished[$0] }
            }
        }
        return search.output()
    }
}
