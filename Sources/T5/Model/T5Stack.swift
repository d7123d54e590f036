/// One T5Stack (transformers' models/t5/modeling_t5.py, `T5Stack`): embeddings, blocks, final RMSNorm. The
/// encoder and the decoder are each one of these, and one `forward` serves every use of them: encoding,
/// teacher-forced scoring, the training step (which asks it to record activations for the backward) and a
/// distillation teacher's pass over a student's batch.
///
/// Each block: x += SelfAttention(RMSNorm(x)); [decoder: x += CrossAttention(RMSNorm(x), memory)];
/// x += FeedForward(RMSNorm(x)). Every projection goes through `GEMM.linear(_:rows:weight:)`, so fp32, bf16
/// and int8 weights run in every mode; rows are packed (`RowBatch`), so no product runs over padding.
struct T5Stack: Sendable {
    let config: T5Config
    /// (V, D) the token embedding, shared by both stacks and the tied LM head.
    let embedding: Tensor
    let blocks: [T5Block]
    /// (D) `final_layer_norm`.
    let finalNorm: Tensor
    /// A decoder's self-attention is causal and its blocks read a memory (the encoder output).
    let isDecoder: Bool
    /// The relative position bias each block adds to its self-attention scores: block 0's table in every
    /// block of a T5 stack, each block's own in UMT5 (expanded once per table).
    let biases: [RelativePositionBias]

    init(config: T5Config, embedding: Tensor, blocks: [T5Block], finalNorm: Tensor, isDecoder: Bool) {
        self.config = config
        self.embedding = embedding
        self.blocks = blocks
        self.finalNorm = finalNorm
        self.isDecoder = isDecoder
        biases = RelativePositionBias.perBlock(blocks, config: config, bidirectional: !isDecoder)
    }

    /// The most positions the relative bias covers (see `RelativePositionBias.supportedLength`).
    var supportedLength: Int { biases.first?.supportedLength ?? Int.max }

    var innerDim: Int { config.numHeads * config.dKV }
}

/// The encoder output a decoder's cross-attention reads: (Ns, D) packed rows, and for each decoder sequence
/// the encoder sequence it reads (beams and sampled copies of one input read the same one).
struct StackMemory {
    let output: Tensor
    let rows: RowBatch
    /// `sequences[b]`: the memory sequence decoder sequence b attends to; nil when it is b itself.
    let sequences: [Int]?

    init(output: Tensor, rows: RowBatch, sequences: [Int]? = nil) {
        self.output = output
        self.rows = rows
        self.sequences = sequences
    }

    @inline(__always)
    func sequence(of b: Int) -> Int { sequences?[b] ?? b }
}

/// What a `T5Stack.forward` returns: the stack's output, and the activations when it recorded them.
struct StackResult {
    /// (N, D) dropout(final_layer_norm(x)).
    let output: Tensor
    let activations: StackActivations?
}

/// The keys and values one sequence's attention reads in one block: `length` rows of H·K, `stride` apart.
struct KeyValueRows {
    let keys: UnsafePointer<Float>
    let values: UnsafePointer<Float>
    let stride: Int
    let length: Int
}

/// What a decoder's attention reads beyond the rows of a call, kept between decode steps (`KVCache`): each
/// sequence's earlier self-attention keys and values, and its memory's cross-attention keys and values,
/// projected once.
protocol DecoderCache {
    /// Stores sequence b's `count` new self-attention keys and values of block `block` (rows of `keys` and
    /// `values`, H·K apart) after its cached positions, and returns its whole history, the new rows included.
    /// Room for them was made before the call.
    func append(block: Int, sequence b: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, count: Int) -> KeyValueRows
    /// Block `block`'s cross-attention keys and values of the memory sequence b reads.
    func memory(block: Int, sequence b: Int) -> KeyValueRows
}

extension T5Stack {
    /// Runs the stack over `ids`, packed as `rows`. `memory` is the encoder output for a decoder.
    ///
    /// When `record` is set (training), every activation the backward reads is kept in `workspace` and
    /// dropout with `dropoutRate` is applied where transformers' T5 applies `config.dropout_rate` in train
    /// mode (modeling_t5.py: embeddings :726, attention probabilities :169, each sub-layer's output before the
    /// residual add :403, :435, :141, between the feed-forward activation and wo :87, :111, after the final
    /// layer norm :746), with masks drawn from `generator` in a fixed order. Otherwise (inference) each
    /// sub-layer adds into the residual stream in place and frees its temporaries, and `dropoutRate` must be 0.
    ///
    /// A decode step (or a scoring pass that continues a cached prefix) passes `cache` instead of `memory`:
    /// each sequence's rows then sit at positions `rows.positions[b]...` after its cached ones, their keys and
    /// values are appended to the cache, and cross-attention reads the cache's projections of the memory.
    ///
    /// `blockInput(b, x)`, when given, receives the residual stream entering block b, (N, D), before it runs: a
    /// distillation teacher's hidden states.
    func forward(
        ids: [Int32], rows: RowBatch, memory: StackMemory?, cache: DecoderCache? = nil, workspace: Workspace,
        record: Bool, dropoutRate: Float = 0, generator: inout SeededGenerator,
        blockInput: ((Int, UnsafePointer<Float>) -> Void)? = nil
    ) -> StackResult {
        precondition(ids.count == rows.rows, "one id per row")
        precondition(record || dropoutRate == 0, "dropout is a training-mode operation")
        precondition(!(record && cache != nil), "training reads no cache")
        precondition(isDecoder == (memory != nil || cache != nil), "a decoder reads a memory, an encoder does not")
        precondition(cache == nil || memory == nil, "a cached decoder reads the memory's projections from its cache")
        let pass = SubLayerPass(stack: self, workspace: workspace, record: record, dropoutRate: dropoutRate)
        let d = config.dModel, n = rows.rows
        var x = workspace.tensor([n, d], zeroed: false)  // (N, D) the residual stream
        ids.withUnsafeBufferPointer { p in
            Embedding.forward(ids: p.baseAddress.unsafelyUnwrapped, count: n, table: embedding.pointer, dim: d, into: x.pointer)
        }
        let embeddingMask = pass.dropout(x.pointer, n * d, &generator)
        var saved = [BlockActivations]()
        for (b, block) in blocks.enumerated() {
            blockInput?(b, x.pointer)
            let selfAttention = pass.attention(
                block.selfAttention, block: b, input: x, queries: rows, keys: .own(cache), bias: biases[b],
                generator: &generator)
            x = selfAttention.output
            var crossAttention: AttentionActivations?
            if let layer = block.crossAttention {
                let keys: KeySource = memory.map { .memory($0) } ?? .cachedMemory(cache.unsafelyUnwrapped)
                let step = pass.attention(layer, block: b, input: x, queries: rows, keys: keys, bias: nil, generator: &generator)
                crossAttention = step.saved
                x = step.output
            }
            let feedForward = pass.feedForward(block.feedForward, input: x, rows: n, generator: &generator)
            x = feedForward.output
            if record, let s = selfAttention.saved, let f = feedForward.saved {
                saved.append(BlockActivations(selfAttention: s, crossAttention: crossAttention, feedForward: f))
            }
        }
        let output = record ? workspace.tensor([n, d], zeroed: false) : x
        pass.rmsNorm(x, weight: finalNorm, rows: n, into: output)
        let finalMask = pass.dropout(output.pointer, n * d, &generator)
        let activations = record
            ? StackActivations(
                ids: ids, rows: rows, embeddingMask: embeddingMask, blocks: saved,
                finalInput: x, finalMask: finalMask, output: output)
            : nil
        return StackResult(output: output, activations: activations)
    }
}

/// Where an attention sub-layer's keys and values come from.
private enum KeySource {
    /// Self-attention: the call's own rows, after the cached ones when there is a cache.
    case own(DecoderCache?)
    /// Cross-attention to an encoder output, projected in the call.
    case memory(StackMemory)
    /// Cross-attention to the projections a cache holds.
    case cachedMemory(DecoderCache)
}

/// The sub-layers of one `T5Stack.forward`, written once for both modes: recording (training: each
/// sub-layer returns a new output tensor and keeps its activations) and inference (each adds into the
/// residual stream in place and releases its temporaries).
private struct SubLayerPass {
    let stack: T5Stack
    let workspace: Workspace
    let record: Bool
    let dropoutRate: Float

    var config: T5Config { stack.config }

    /// A dropout mask for `x` (n), applied in place; nil (and `x` untouched) without dropout.
    func dropout(_ x: UnsafeMutablePointer<Float>, _ n: Int, _ generator: inout SeededGenerator) -> Tensor? {
        guard let mask = dropoutMask(n, &generator) else { return nil }
        Parallel.forEachSlice(n, cost: n) { s in Vector.multiply(x + s.lowerBound, by: mask.pointer + s.lowerBound, s.count) }
        return mask
    }

    /// A fresh dropout mask of n elements (the generator's draws are sequential); nil without dropout.
    func dropoutMask(_ n: Int, _ generator: inout SeededGenerator) -> Tensor? {
        guard dropoutRate > 0 else { return nil }
        let mask = workspace.tensor([n], zeroed: false)
        Dropout.makeMask(rate: dropoutRate, count: n, generator: &generator, into: mask.pointer)
        return mask
    }

    /// y (rows, D) = RMSNorm(x), rows split across threads (each row's arithmetic is the same on any split).
    func rmsNorm(_ x: Tensor, weight: Tensor, rows n: Int, into y: Tensor) {
        let d = config.dModel
        Parallel.forEachSlice(n, cost: 4 * n * d) { r in
            RMSNorm.forward(
                x.pointer + r.lowerBound * d, weight: weight.pointer, epsilon: config.layerNormEpsilon,
                rows: r.count, dim: d, into: y.pointer + r.lowerBound * d)
        }
    }

    /// The end of a sub-layer: input + dropout(branch · Wᵀ). Recording, into a new tensor (the input is an
    /// activation the backward reads) with the dropout mask drawn; otherwise added into `input` in place by
    /// the product itself.
    func residual(
        _ input: Tensor, branch: Tensor, rows n: Int, weight: WeightMatrix, _ generator: inout SeededGenerator
    ) -> (output: Tensor, mask: Tensor?) {
        guard record else {
            GEMM.linear(branch.pointer, rows: n, weight: weight, into: input.pointer, accumulate: true)
            return (input, nil)
        }
        let count = n * config.dModel
        let projected = workspace.tensor([n, config.dModel], zeroed: false)
        GEMM.linear(branch.pointer, rows: n, weight: weight, into: projected.pointer)
        let output = workspace.tensor([n, config.dModel], zeroed: false)
        let mask = dropoutMask(count, &generator)
        Parallel.forEachSlice(count, cost: 2 * count) { s in
            let branch = projected.pointer + s.lowerBound, out = output.pointer + s.lowerBound
            if let mask { Vector.multiply(branch, by: mask.pointer + s.lowerBound, s.count) }
            out.update(from: input.pointer + s.lowerBound, count: s.count)
            Vector.add(branch, into: out, s.count)
        }
        return (output, mask)
    }

    /// One attention sub-layer of block `block`: output = input + dropout(o(attention(RMSNorm(input)))).
    /// Self-attention (with the relative position `bias`, causal in a decoder) or cross-attention to the
    /// encoder output (no bias, T5LayerCrossAttention), as `keys` says.
    func attention(
        _ layer: SubLayer<AttentionWeights>, block: Int, input: Tensor, queries: RowBatch, keys source: KeySource,
        bias: RelativePositionBias?, generator: inout SeededGenerator
    ) -> (saved: AttentionActivations?, output: Tensor) {
        let d = config.dModel, hk = stack.innerDim
        let n = queries.rows
        let mark = workspace.mark
        let normed = workspace.tensor([n, d], zeroed: false)  // (N, D)
        rmsNorm(input, weight: layer.norm, rows: n, into: normed)
        let q = workspace.tensor([n, hk], zeroed: false)  // (N, H·K)
        GEMM.linear(normed.pointer, rows: n, weight: layer.q, into: q.pointer)
        // k, v: (N, H·K) projections of the rows themselves, or (Ns, H·K) of the memory; when the memory is
        // cached they stay aliases of q, never read.
        var k = q, v = q
        let causal: Bool
        var sequences = [KeyValueRows]()  // what each query sequence attends to
        sequences.reserveCapacity(queries.count)
        switch source {
        case let .own(cache):
            causal = stack.isDecoder
            k = workspace.tensor([n, hk], zeroed: false)
            v = workspace.tensor([n, hk], zeroed: false)
            GEMM.linear(normed.pointer, rows: n, weight: layer.k, into: k.pointer)
            GEMM.linear(normed.pointer, rows: n, weight: layer.v, into: v.pointer)
            for b in 0..<queries.count {
                let keys = k.pointer + queries.first[b] * hk, values = v.pointer + queries.first[b] * hk
                if let cache {
                    sequences.append(cache.append(block: block, sequence: b, keys: keys, values: values, count: queries.lengths[b]))
                } else {
                    sequences.append(KeyValueRows(keys: keys, values: values, stride: hk, length: queries.lengths[b]))
                }
            }
        case let .memory(memory):
            causal = false
            let rows = memory.rows.rows
            k = workspace.tensor([rows, hk], zeroed: false)
            v = workspace.tensor([rows, hk], zeroed: false)
            GEMM.linear(memory.output.pointer, rows: rows, weight: layer.k, into: k.pointer)
            GEMM.linear(memory.output.pointer, rows: rows, weight: layer.v, into: v.pointer)
            for b in 0..<queries.count {
                let m = memory.sequence(of: b), first = memory.rows.first[m] * hk
                sequences.append(KeyValueRows(keys: k.pointer + first, values: v.pointer + first, stride: hk, length: memory.rows.lengths[m]))
            }
        case let .cachedMemory(cache):
            causal = false
            for b in 0..<queries.count { sequences.append(cache.memory(block: block, sequence: b)) }
        }
        let context = workspace.tensor([n, hk], zeroed: false)  // (N, H·K)
        guard record else {
            attend(q: q, queries: queries, sequences: sequences, causal: causal, bias: bias, into: context)
            let (output, _) = residual(input, branch: context, rows: n, weight: layer.o, &generator)
            workspace.release(to: mark)
            return (nil, output)
        }
        let (probabilities, probabilityMask, offsets) = attendRecording(
            q: q, queries: queries, sequences: sequences, causal: causal, bias: bias, into: context, &generator)
        let (output, outputMask) = residual(input, branch: context, rows: n, weight: layer.o, &generator)
        let saved = AttentionActivations(
            input: input, normed: normed, q: q, k: k, v: v, probabilities: probabilities,
            probabilityMask: probabilityMask, offsets: offsets, context: context, outputMask: outputMask)
        return (saved, output)
    }

    /// Inference attention, one (sequence, head) pair at a time through `Attention.forward`, the pairs split
    /// across the threads in contiguous runs, each with its own scores scratch.
    private func attend(
        q: Tensor, queries: RowBatch, sequences: [KeyValueRows], causal: Bool, bias: RelativePositionBias?,
        into context: Tensor
    ) {
        let hk = stack.innerDim, dk = config.dKV, heads = config.numHeads
        let pairs = queries.count * heads
        var largest = 0, work = 0
        for b in 0..<queries.count {
            let l = sequences[b].length
            largest = max(largest, queries.lengths[b] * l)
            work += 2 * heads * queries.lengths[b] * l * dk
        }
        // Each part's scores scratch, rounded up to a power of two: a decode step's keys grow by one a step,
        // and the buffer then serves many steps instead of being regrown at each.
        let slot = largest <= 1 ? 1 : 1 << (Int.bitWidth - (largest - 1).leadingZeroBitCount)
        let threads = Parallel.threads
        let scores = workspace.tensor([threads * slot], zeroed: false)
        Parallel.forEachSlice(pairs, cost: work, scratchSlots: threads) { part, slice in
            let scratch = scores.pointer + part * slot
            for pair in slice {
                let b = pair / heads, h = pair % heads
                let source = sequences[b], keyLength = source.length
                let qOffset = queries.first[b] * hk + h * dk
                guard keyLength > 0 else {
                    // Nothing to attend to (an empty input's memory): the head contributes zeros.
                    for i in 0..<queries.lengths[b] { (context.pointer + qOffset + i * hk).update(repeating: 0, count: dk) }
                    continue
                }
                Attention.forward(
                    q: q.pointer + qOffset, ldq: hk, keys: source.keys + h * dk, ldk: source.stride,
                    values: source.values + h * dk, ldv: source.stride,
                    queries: queries.lengths[b], keyLength: keyLength, headDim: dk,
                    firstPosition: queries.positions[b], causal: causal,
                    bias: bias.map { .relative($0.center(h), maxDistance: $0.maxDistance) } ?? .none,
                    scores: scratch, out: context.pointer + qOffset, ldo: hk)
            }
        }
    }

    /// Training attention through `Attention.trainingForward`, keeping the probabilities (and their dropout
    /// mask) for the backward: sequence b, head h at `offsets[b] + h·Tq_b·L_b`.
    private func attendRecording(
        q: Tensor, queries: RowBatch, sequences: [KeyValueRows], causal: Bool, bias: RelativePositionBias?,
        into context: Tensor, _ generator: inout SeededGenerator
    ) -> (probabilities: Tensor, mask: Tensor?, offsets: [Int]) {
        let hk = stack.innerDim, dk = config.dKV, heads = config.numHeads
        var offsets = [Int](), total = 0, largest = 0, work = 0
        for b in 0..<queries.count {
            let l = sequences[b].length
            offsets.append(total)
            total += heads * queries.lengths[b] * l
            largest = max(largest, queries.lengths[b] * l)
            work += 2 * heads * queries.lengths[b] * l * dk
        }
        let probabilities = workspace.tensor([total], zeroed: false)
        let probabilityMask = dropoutRate > 0 ? workspace.tensor([total], zeroed: false) : nil
        // The masks are drawn before the heads run, in (sequence, head) order: the generator's stream, hence
        // every mask, does not depend on how the heads are split across threads.
        if let probabilityMask {
            for b in 0..<queries.count {
                Dropout.makeMask(
                    rate: dropoutRate, count: heads * queries.lengths[b] * sequences[b].length, generator: &generator,
                    into: probabilityMask.pointer + offsets[b])
            }
        }
        // Heads are independent: each thread takes a contiguous range of heads, for every sequence, with its
        // own scratch for the dropped-out probabilities.
        let threads = Parallel.threads
        let dropped = workspace.tensor([dropoutRate > 0 ? threads * largest : 0], zeroed: false)
        Parallel.forEachSlice(heads, cost: work, scratchSlots: threads) { part, slice in
            for h in slice {
                for b in 0..<queries.count {
                    let tq = queries.lengths[b], source = sequences[b], l = source.length
                    let qOffset = queries.first[b] * hk + h * dk
                    let pOffset = offsets[b] + h * tq * l
                    Attention.trainingForward(
                        q: q.pointer + qOffset, ldq: hk, keys: source.keys + h * dk, ldk: source.stride,
                        values: source.values + h * dk, ldv: source.stride,
                        queries: tq, keyLength: l, headDim: dk, causal: causal,
                        bias: bias.map { .relative($0.center(h), maxDistance: $0.maxDistance) } ?? .none,
                        probabilities: probabilities.pointer + pOffset,
                        dropoutMask: probabilityMask.map { UnsafePointer($0.pointer + pOffset) },
                        dropped: dropped.pointer + part * largest,
                        out: context.pointer + qOffset, ldo: hk)
                }
            }
        }
        return (probabilities, probabilityMask, offsets)
    }

    /// One feed-forward sub-layer: output = input + dropout(wo(dropout(act(wi·h) (⊙ wi_1·h)))), h = RMSNorm(input).
    func feedForward(
        _ layer: SubLayer<FeedForwardWeights>, input: Tensor, rows n: Int, generator: inout SeededGenerator
    ) -> (saved: FeedForwardActivations?, output: Tensor) {
        let d = config.dModel, f = config.dFF
        let mark = workspace.mark
        let normed = workspace.tensor([n, d], zeroed: false)  // (N, D)
        rmsNorm(input, weight: layer.norm, rows: n, into: normed)
        let gate = workspace.tensor([n, f], zeroed: false)  // (N, F)
        GEMM.linear(normed.pointer, rows: n, weight: layer.weights.gate, into: gate.pointer)
        var linear: Tensor?
        if let wi1 = layer.weights.linear {
            let l = workspace.tensor([n, f], zeroed: false)
            GEMM.linear(normed.pointer, rows: n, weight: wi1, into: l.pointer)
            linear = l
        }
        // hidden = dropout(act(gate) (⊙ linear)) in one pass over row slices, after drawing its mask. Training
        // keeps `gate` for the backward; inference computes in place.
        let hiddenMask = dropoutMask(n * f, &generator)
        let hidden = record ? workspace.tensor([n, f], zeroed: false) : gate  // (N, F)
        Parallel.forEachSlice(n, cost: 4 * n * f) { r in
            let offset = r.lowerBound * f, count = r.count * f
            if record { (hidden.pointer + offset).update(from: gate.pointer + offset, count: count) }
            if let linear {
                Activations.gatedForward(config.activation, gate: hidden.pointer + offset, linear: linear.pointer + offset, count)
            } else {
                Activations.forward(config.activation, hidden.pointer + offset, count)
            }
            if let hiddenMask { Vector.multiply(hidden.pointer + offset, by: hiddenMask.pointer + offset, count) }
        }
        let (output, outputMask) = residual(input, branch: hidden, rows: n, weight: layer.wo, &generator)
        guard record else {
            workspace.release(to: mark)
            return (nil, output)
        }
        let saved = FeedForwardActivations(
            input: input, normed: normed, gate: gate, linear: linear, hidden: hidden,
            hiddenMask: hiddenMask, outputMask: outputMask)
        return (saved, output)
    }
}
