/// The decoder's keys and values, addressed by slot: one slot per sequence being decoded, each with its own
/// length, admitted when a sequence starts and released when it ends, so that the set of sequences a decode
/// step runs over can change at every step (CTranslate2's `Decoder::update_state` / `gather_state`,
/// `include/ctranslate2/layers/decoder.h`). Cross-attention keys and values are computed once per encoder
/// row, when the cache is made, and every slot names the encoder row it reads.
///
/// A slot's self-attention keys (and values) of all blocks live in one buffer of (layers, capacity, H·K)
/// floats: block l's key for position p at `(l · capacity + p) · H·K`. Each slot's buffer starts at
/// `initialPositions` and doubles when a step would pass its end, so memory follows the tokens each
/// sequence has generated rather than `max_new_tokens`; a growth or admission that would not fit in memory
/// throws `.tooLarge` before allocating.
///
/// This is the only place that knows where a slot's keys for a block live and how long it is: the decoder's
/// block loop asks `keys(of:layer:)`, `values(of:layer:)` and `length(of:)`.
final class KVCache {
    /// A handle on one sequence's cache; valid from `admit` until `release`.
    struct Slot: Hashable, Sendable {
        fileprivate let index: Int
    }

    /// One slot's buffers: (layers, capacity, H·K) keys and values.
    private struct Buffers {
        var keys: Tensor
        var values: Tensor
        var capacity: Int
    }

    let layers: Int
    /// H·K: the floats of one position's key (or value) in one block.
    let width: Int
    /// Positions a slot may reach (the relative position bias's supported length).
    let maxPositions: Int
    /// Positions a new slot's buffers hold before they first grow.
    let initialPositions: Int

    /// Per block with cross-attention, (Ns, H·K): the projected encoder output of every input, packed (input i
    /// at rows `sourceFirst[i] ..< sourceFirst[i] + sourceLengths[i]`).
    let crossKeys: [Tensor]
    let crossValues: [Tensor]
    /// Each encoder row's real length, and the padded length S the cross buffers are laid out with.
    let sourceLengths: [Int]
    let sourceLength: Int
    /// Each encoder row's first row in the packed cross buffers.
    let sourceFirst: [Int]

    private var buffers: [Buffers?] = []
    private var lengths: [Int] = []
    private var inputs: [Int] = []
    private var freeIndices: [Int] = []
    /// Buffers of released slots (and those a reorder left unused), reused before allocating.
    private var spare: [Buffers] = []
    /// `reorder`'s scratch: what each slot will hold, and per slot index whether it is reordered and whether
    /// its old buffers are taken (all false between calls).
    private struct Move {
        var buffers: Buffers
        var length: Int
        var input: Int
        var byReference: Bool
    }
    private var moves: [Move] = []
    private var isTarget: [Bool] = [], isClaimed: [Bool] = []

    /// Projects the cross-attention keys and values of every encoder row once; no slot is admitted yet.
    init(model: T5Model, encoded: EncoderOutput, initialPositions: Int) throws(T5Error) {
        let hk = model.innerDim, blocks = model.weights.decoderBlocks
        layers = blocks.count
        width = hk
        maxPositions = model.decoderSupportedLength
        self.initialPositions = max(1, initialPositions)
        sourceLengths = encoded.lengths
        sourceLength = encoded.sourceLength
        sourceFirst = encoded.rows.first
        let crossBlocks = blocks.filter { $0.crossAttention != nil }.count, sourceRows = encoded.rows.rows
        try MemoryBudget.require(
            MemoryBudget.floats(crossBlocks, 2, sourceRows, hk),
            for: "the cross-attention keys and values of \(encoded.batch) input\(encoded.batch == 1 ? "" : "s") of \(encoded.sourceLength) tokens")
        // Cross-attention keys and values depend only on the encoder output: project them once per input,
        // over its real rows only (the packed output: a batch of mixed lengths costs its tokens).
        var keys = [Tensor](), values = [Tensor]()
        for block in blocks {
            guard let cross = block.crossAttention else { continue }
            let ck = Tensor(zeros: [sourceRows, hk])
            let cv = Tensor(zeros: [sourceRows, hk])
            GEMM.linear(encoded.packed.pointer, rows: sourceRows, weight: cross.k, into: ck.pointer)
            GEMM.linear(encoded.packed.pointer, rows: sourceRows, weight: cross.v, into: cv.pointer)
            keys.append(ck)
            values.append(cv)
        }
        crossKeys = keys
        crossValues = values
    }

    /// Slots admitted and not released.
    var liveCount: Int { buffers.count - freeIndices.count }

    /// The most positions any slot holds before it next grows.
    var capacity: Int { buffers.reduce(0) { max($0, $1?.capacity ?? 0) } }

    /// Starts one empty sequence per entry of `inputs`, each reading that encoder row. Throws `.tooLarge`,
    /// having admitted none, when their buffers do not fit.
    func admit(inputs rows: [Int]) throws(T5Error) -> [Slot] {
        precondition(rows.allSatisfy { sourceLengths.indices.contains($0) }, "an encoder row outside the cache")
        let fresh = max(0, rows.count - spare.count)
        try MemoryBudget.require(
            MemoryBudget.floats(fresh, layers, 2, initialPositions, width),
            for: "a decoder cache of \(initialPositions) positions for \(rows.count) sequence\(rows.count == 1 ? "" : "s")")
        return rows.map { input in
            let storage = spare.popLast() ?? allocate(initialPositions)
            let index: Int
            if let free = freeIndices.popLast() {
                index = free
                buffers[index] = storage
                lengths[index] = 0
                inputs[index] = input
            } else {
                index = buffers.count
                buffers.append(storage)
                lengths.append(0)
                inputs.append(input)
            }
            return Slot(index: index)
        }
    }

    /// Starts one empty sequence reading encoder row `input`.
    func admit(input: Int) throws(T5Error) -> Slot {
        try admit(inputs: [input])[0]
    }

    /// Ends a sequence; its buffers are kept for the next admission.
    func release(_ slot: Slot) {
        guard let storage = buffers[slot.index] else { preconditionFailure("slot released twice") }
        spare.append(storage)
        buffers[slot.index] = nil
        freeIndices.append(slot.index)
    }

    /// Positions the slot holds.
    func length(of slot: Slot) -> Int { lengths[slot.index] }

    /// The encoder row the slot reads.
    func input(of slot: Slot) -> Int { inputs[slot.index] }

    /// Block `layer`'s keys of the slot: (capacity, H·K), position p at row p.
    @inline(__always)
    func keys(of slot: Slot, layer: Int) -> UnsafeMutablePointer<Float> {
        let b = buffers[slot.index].unsafelyUnwrapped
        return b.keys.pointer + layer * b.capacity * width
    }

    /// Block `layer`'s values of the slot: (capacity, H·K).
    @inline(__always)
    func values(of slot: Slot, layer: Int) -> UnsafeMutablePointer<Float> {
        let b = buffers[slot.index].unsafelyUnwrapped
        return b.values.pointer + layer * b.capacity * width
    }

    /// Makes room for `count` more positions in the slot, doubling its buffers (at least to what is asked).
    /// Throws before allocating when the positions pass what the model's position bias supports or the
    /// memory available.
    func reserve(_ slot: Slot, adding count: Int) throws(T5Error) {
        let positions = lengths[slot.index] + count
        guard let old = buffers[slot.index], positions > old.capacity else { return }
        if positions > maxPositions {
            throw .invalidOption(name: "GenerationOptions.maxNewTokens", reason: "\(positions) decoder positions exceed the \(maxPositions) this model's relative_attention_max_distance can be expanded to")
        }
        let newCapacity = max(positions, old.capacity <= Int.max / 2 ? 2 * old.capacity : Int.max)
        try MemoryBudget.require(
            MemoryBudget.floats(layers, 2, newCapacity, width),
            for: "a decoder cache of \(newCapacity) positions")
        var new = allocate(newCapacity)
        copy(from: old, into: &new, positions: lengths[slot.index])
        buffers[slot.index] = new
    }

    /// Records that `count` positions were written past the slot's length (by the caller, through
    /// `keys(of:layer:)` and `values(of:layer:)`, after `reserve`).
    func advance(_ slot: Slot, by count: Int) {
        lengths[slot.index] += count
    }

    /// Beam search bookkeeping (transformers' `_reorder_cache` with beam_idx): afterwards slot `slots[i]`
    /// holds what slot `sources[i]` held before the call (positions, length and encoder row), all read at
    /// once. A slot whose old contents only one slot continues keeps or hands over its buffers without
    /// copying; only a sequence continued by several slots is copied, into buffers the others left unused.
    func reorder(_ slots: [Slot], from sources: [Slot]) throws(T5Error) {
        precondition(slots.count == sources.count)
        guard zip(slots, sources).contains(where: { $0 != $1 }) else { return }
        if isTarget.count < buffers.count {
            isTarget = [Bool](repeating: false, count: buffers.count)
            isClaimed = isTarget
        }
        defer {
            for (slot, source) in zip(slots, sources) {
                isTarget[slot.index] = false
                isClaimed[slot.index] = false
                isClaimed[source.index] = false
            }
        }
        for slot in slots { isTarget[slot.index] = true }
        // The first claim on a source's buffers takes them. A source that keeps its own contents (it continues
        // itself, or is not reordered at all) claims first; every later claim copies.
        for (slot, source) in zip(slots, sources) where slot == source || !isTarget[source.index] {
            isClaimed[source.index] = true
        }
        moves.removeAll(keepingCapacity: true)
        var copies = 0, longest = 0
        for (slot, source) in zip(slots, sources) {
            let byReference = slot != source && !isClaimed[source.index]
            if byReference { isClaimed[source.index] = true }
            if slot != source && !byReference {
                copies += 1
                longest = max(longest, lengths[source.index])
            }
            moves.append(Move(buffers: buffers[source.index].unsafelyUnwrapped, length: lengths[source.index], input: inputs[source.index], byReference: byReference))
        }
        // Buffers of reordered slots that nobody claimed are free for the copies.
        let freed = slots.reduce(0) { $0 + (isClaimed[$1.index] ? 0 : 1) }
        let fresh = max(0, copies - spare.count - freed)
        if fresh > 0 {
            try MemoryBudget.require(
                MemoryBudget.floats(fresh, layers, 2, max(longest, initialPositions), width),
                for: "reordering a decoder cache of \(longest) positions for \(slots.count) sequences")
        }
        for slot in slots where !isClaimed[slot.index] { spare.append(buffers[slot.index].unsafelyUnwrapped) }
        for (i, (slot, move)) in zip(slots, moves).enumerated() where slot != sources[i] {
            if move.byReference {
                buffers[slot.index] = move.buffers
            } else {
                var into = spare.popLast() ?? allocate(max(move.buffers.capacity, initialPositions))
                if into.capacity < move.length { into = allocate(move.buffers.capacity) }
                copy(from: move.buffers, into: &into, positions: move.length)
                buffers[slot.index] = into
            }
            lengths[slot.index] = move.length
            inputs[slot.index] = move.input
        }
    }

    private func allocate(_ capacity: Int) -> Buffers {
        Buffers(keys: Tensor(zeros: [layers, capacity, width]), values: Tensor(zeros: [layers, capacity, width]), capacity: capacity)
    }

    /// Copies the first `positions` positions of every block from `old` to `new` (at `new`'s stride).
    private func copy(from old: Buffers, into new: inout Buffers, positions: Int) {
        for layer in 0..<layers {
            (new.keys.pointer + layer * new.capacity * width).update(from: old.keys.pointer + layer * old.capacity * width, count: positions * width)
            (new.values.pointer + layer * new.capacity * width).update(from: old.values.pointer + layer * old.capacity * width, count: positions * width)
        }
    }
}
