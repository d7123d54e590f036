/// The rows of a batch of sequences, packed: sequence b occupies rows `first[b] ..< first[b] + lengths[b]`.
///
/// Training packs rather than pads: a padded position of transformers' batch changes nothing a real
/// position computes (pad keys are masked out, pad queries of the decoder come after every real one and their
/// labels are -100), so leaving them out gives the same loss and gradients without computing them.
struct PackedSequences {
    let lengths: [Int]
    let first: [Int]
    /// Σ lengths.
    let rows: Int

    init(lengths: [Int]) {
        self.lengths = lengths
        var first = [Int](), rows = 0
        for n in lengths { first.append(rows); rows += n }
        self.first = first
        self.rows = rows
    }

    var count: Int { lengths.count }
    var maxLength: Int { lengths.max() ?? 0 }
}

/// What the backward of one attention sub-layer (T5LayerSelfAttention or T5LayerCrossAttention) needs.
struct AttentionActivations {
    /// (N, D) the residual stream entering the sub-layer.
    let input: Tensor
    /// (N, D) RMSNorm(input).
    let normed: Tensor
    /// (N, H·K)
    let q: Tensor
    /// (N, H·K) for self-attention; (Ns, H·K), projections of the encoder output, for cross-attention.
    let k: Tensor
    let v: Tensor
    /// Attention probabilities before dropout: sequence b, head h at `offsets[b] + h·Tq_b·L_b`, (Tq_b, L_b).
    let probabilities: Tensor
    /// Dropout mask on the probabilities, laid out as `probabilities`; nil without dropout.
    let probabilityMask: Tensor?
    let offsets: [Int]
    /// (N, H·K) attention output before the `o` projection.
    let context: Tensor
    /// (N, D) dropout mask on the sub-layer output; nil without dropout.
    let outputMask: Tensor?
}

/// What the backward of one feed-forward sub-layer (T5LayerFF) needs.
struct FeedForwardActivations {
    /// (N, D) the residual stream entering the sub-layer.
    let input: Tensor
    /// (N, D) RMSNorm(input).
    let normed: Tensor
    /// (N, F) wi·h (or wi_0·h), the activation's input.
    let gate: Tensor
    /// (N, F) wi_1·h when gated.
    let linear: Tensor?
    /// (N, F) act(gate) (⊙ linear), after dropout: the input of wo.
    let hidden: Tensor
    /// (N, F) dropout mask on `hidden`; nil without dropout.
    let hiddenMask: Tensor?
    /// (N, D) dropout mask on the sub-layer output; nil without dropout.
    let outputMask: Tensor?
}

struct BlockActivations {
    let selfAttention: AttentionActivations
    let crossAttention: AttentionActivations?
    let feedForward: FeedForwardActivations
}

/// One stack's saved activations (T5Stack.forward).
struct StackActivations {
    /// (N) token ids.
    let ids: [Int32]
    let rows: PackedSequences
    /// (N, D) dropout mask on the embeddings; nil without dropout.
    let embeddingMask: Tensor?
    let blocks: [BlockActivations]
    /// (N, D) the residual stream entering the final layer norm.
    let finalInput: Tensor
    /// (N, D) dropout mask after the final layer norm; nil without dropout.
    let finalMask: Tensor?
    /// (N, D) the stack's output: dropout(final_layer_norm(x)).
    let output: Tensor
}

/// A training forward over one batch, keeping every activation the backward reads (see Backward.swift, which
/// walks it in reverse with the same names).
///
/// Matches T5ForConditionalGeneration.forward with `labels` in train mode (transformers 5.24,
/// models/t5/modeling_t5.py), dropout included: on the embeddings (:726), on each attention sub-layer's
/// output before the residual add (:403, :435), on the attention probabilities (:169), between the
/// feed-forward activation and wo (:87, :111), on the feed-forward output before the residual add (:141),
/// and after each stack's final layer norm (:746).
final class TrainingPass {
    let config: T5Config
    let weights: T5Weights
    /// The relative position bias each block reads (one shared value per stack in T5, one per block in UMT5).
    let encoderBiases: [RelativePositionBias]
    let decoderBiases: [RelativePositionBias]
    let dropoutRate: Float
    let encoder: StackActivations
    let decoder: StackActivations
    /// (Nt) the target id of each decoder row.
    let labels: [Int32]
    /// (Nt, D) the LM head's input: the decoder output, times d_model^-0.5 when the model rescales.
    let headInput: Tensor
    /// (Nt, V) logits. The backward overwrites them with their gradient.
    let logits: Tensor
    /// Where every buffer of the pass and of its backward comes from.
    let workspace: TrainingWorkspace

    var innerDim: Int { config.numHeads * config.dKV }

    /// Runs the forward. `inputs` and `targets` are unpadded; the decoder reads
    /// `[decoder_start] + target[..<last]` (transformers' `_shift_right`) and predicts `target`.
    /// The buffers come from `workspace`, which is reset first: a previous pass over it must be finished.
    init(
        weights: T5Weights, config: T5Config, inputs: [[Int]], targets: [[Int]], dropoutRate: Float,
        workspace: TrainingWorkspace, generator: inout SeededGenerator
    ) {
        precondition(!inputs.isEmpty && inputs.count == targets.count, "a batch needs as many targets as inputs, at least one")
        for (input, target) in zip(inputs, targets) {
            precondition(!input.isEmpty && !target.isEmpty, "empty input or target in a training batch")
            precondition((input + target).allSatisfy { $0 >= 0 && $0 < config.vocabSize }, "token id outside the vocabulary of \(config.vocabSize)")
        }
        precondition(dropoutRate >= 0 && dropoutRate < 1, "dropout rate \(dropoutRate) outside [0, 1)")
        self.config = config
        self.weights = weights
        self.dropoutRate = dropoutRate
        self.workspace = workspace
        workspace.reset()
        encoderBiases = RelativePositionBias.perBlock(weights.encoderBlocks, config: config, bidirectional: true)
        decoderBiases = RelativePositionBias.perBlock(weights.decoderBlocks, config: config, bidirectional: false)
        let source = PackedSequences(lengths: inputs.map(\.count))
        let target = PackedSequences(lengths: targets.map(\.count))
        let sourceIDs = inputs.flatMap { $0.map(Int32.init) }
        let decoderIDs = targets.flatMap { t in ([config.decoderStartTokenID] + t.dropLast()).map(Int32.init) }
        labels = targets.flatMap { $0.map(Int32.init) }

        // The stacks run in a helper: `self`'s methods are unavailable until every stored property is set.
        let forward = StackForward(config: config, dropoutRate: dropoutRate, workspace: workspace)
        encoder = forward.run(
            ids: sourceIDs, rows: source, embedding: weights.shared, blocks: weights.encoderBlocks,
            finalNorm: weights.encoderFinalNorm, biases: encoderBiases, causal: false, memory: nil, generator: &generator)
        decoder = forward.run(
            ids: decoderIDs, rows: target, embedding: weights.shared, blocks: weights.decoderBlocks,
            finalNorm: weights.decoderNorm, biases: decoderBiases, causal: true,
            memory: (encoder.output, source), generator: &generator)

        // LM head (T5ForConditionalGeneration.forward, modeling_t5.py:1047-1050).
        let d = config.dModel, nt = target.rows
        if config.rescalesDecoderOutput {
            headInput = workspace.tensor([nt, d], zeroed: false)
            headInput.pointer.update(from: decoder.output.pointer, count: nt * d)
            Vector.scale(headInput.pointer, by: Float(1 / Double(d).squareRoot()), nt * d)
        } else {
            headInput = decoder.output
        }
        logits = workspace.tensor([nt, config.vocabSize], zeroed: false)
        GEMM.trainingLinear(headInput.pointer, rows: nt, inFeatures: d, weight: weights.lmHead.pointer, outFeatures: config.vocabSize, into: logits.pointer)
    }
}

/// Runs `body` on contiguous slices of `0..<count`, on several threads when the pass (`cost` elementwise
/// operations) is worth a hand-off. For the elementwise passes between the products, which would otherwise
/// leave every core but one idle.
@inline(__always)
func forEachSlice(_ count: Int, cost: Int, _ body: (Range<Int>) -> Void) {
    let parts = Parallel.chunks(count, cost: cost)
    Parallel.run(parts) { part in body(count * part / parts ..< count * (part + 1) / parts) }
}

/// The forward of one stack, shared by the encoder and the decoder.
struct StackForward {
    let config: T5Config
    let dropoutRate: Float
    let workspace: TrainingWorkspace

    var innerDim: Int { config.numHeads * config.dKV }

    /// A dropout mask for `x` (n), applied in place; nil (and `x` untouched) without dropout.
    private func dropout(_ x: UnsafeMutablePointer<Float>, _ n: Int, _ generator: inout SeededGenerator) -> Tensor? {
        guard let mask = dropoutMask(n, &generator) else { return nil }
        forEachSlice(n, cost: n) { s in Vector.multiply(x + s.lowerBound, by: mask.pointer + s.lowerBound, s.count) }
        return mask
    }

    /// A fresh dropout mask of n elements (the generator's draws are sequential); nil without dropout.
    private func dropoutMask(_ n: Int, _ generator: inout SeededGenerator) -> Tensor? {
        guard dropoutRate > 0 else { return nil }
        let mask = workspace.tensor([n], zeroed: false)
        Dropout.makeMask(rate: dropoutRate, count: n, generator: &generator, into: mask.pointer)
        return mask
    }

    /// y (rows, D) = RMSNorm(x), rows split across threads.
    private func rmsNorm(_ x: Tensor, weight: Tensor, rows n: Int, into y: Tensor) {
        let d = config.dModel
        forEachSlice(n, cost: 4 * n * d) { r in
            RMSNorm.forward(
                x.pointer + r.lowerBound * d, weight: weight.pointer, epsilon: config.layerNormEpsilon,
                rows: r.count, dim: d, into: y.pointer + r.lowerBound * d)
        }
    }

    /// The end of a sub-layer: output (rows, D) = input + dropout(branch), branch (rows, D) the projected
    /// output of the sub-layer. Draws the mask (nil without dropout).
    private func residual(
        _ input: Tensor, branch: Tensor, rows n: Int, into output: Tensor, _ generator: inout SeededGenerator
    ) -> Tensor? {
        let count = n * config.dModel
        let mask = dropoutMask(count, &generator)
        forEachSlice(count, cost: 2 * count) { s in
            let branch = branch.pointer + s.lowerBound, out = output.pointer + s.lowerBound
            if let mask { Vector.multiply(branch, by: mask.pointer + s.lowerBound, s.count) }
            out.update(from: input.pointer + s.lowerBound, count: s.count)
            Vector.add(branch, into: out, s.count)
        }
        return mask
    }

    /// T5Stack.forward: embeddings, blocks, final layer norm. `memory` is the encoder output and its rows
    /// for a decoder (whose blocks then have cross-attention).
    func run(
        ids: [Int32], rows: PackedSequences, embedding: Tensor, blocks: [BlockWeights], finalNorm: Tensor,
        biases: [RelativePositionBias], causal: Bool, memory: (Tensor, PackedSequences)?,
        generator: inout SeededGenerator
    ) -> StackActivations {
        let d = config.dModel, n = rows.rows
        var x = workspace.tensor([n, d], zeroed: false)  // (N, D)
        ids.withUnsafeBufferPointer { p in
            Embedding.forward(ids: p.baseAddress.unsafelyUnwrapped, count: n, table: embedding.pointer, dim: d, into: x.pointer)
        }
        let embeddingMask = dropout(x.pointer, n * d, &generator)
        var saved = [BlockActivations]()
        for (b, block) in blocks.enumerated() {
            let selfAttention = attention(
                block.selfAttention, norm: block.selfAttentionNorm, input: x, queries: rows, memory: nil,
                causal: causal, bias: biases[b], generator: &generator)
            x = selfAttention.output
            var crossAttention: AttentionActivations?
            if let cross = block.crossAttention, let norm = block.crossAttentionNorm, let memory {
                let step = attention(
                    cross, norm: norm, input: x, queries: rows, memory: memory,
                    causal: false, bias: nil, generator: &generator)
                crossAttention = step.saved
                x = step.output
            }
            let feedForward = feedForward(block.feedForward, norm: block.feedForwardNorm, input: x, rows: n, generator: &generator)
            x = feedForward.output
            saved.append(BlockActivations(selfAttention: selfAttention.saved, crossAttention: crossAttention, feedForward: feedForward.saved))
        }
        let output = workspace.tensor([n, d], zeroed: false)
        rmsNorm(x, weight: finalNorm, rows: n, into: output)
        let finalMask = dropout(output.pointer, n * d, &generator)
        return StackActivations(
            ids: ids, rows: rows, embeddingMask: embeddingMask, blocks: saved,
            finalInput: x, finalMask: finalMask, output: output)
    }

    /// One attention sub-layer: output = input + dropout(o(attention(RMSNorm(input)))).
    /// Self-attention when `memory` is nil (with the relative position `bias`); otherwise cross-attention to
    /// the encoder output `memory` (no bias).
    func attention(
        _ w: AttentionWeights, norm: Tensor, input: Tensor, queries: PackedSequences,
        memory: (Tensor, PackedSequences)?, causal: Bool, bias: RelativePositionBias?,
        generator: inout SeededGenerator
    ) -> (saved: AttentionActivations, output: Tensor) {
        let d = config.dModel, hk = innerDim, dk = config.dKV, heads = config.numHeads
        let n = queries.rows
        let keyRows = memory?.1 ?? queries
        let normed = workspace.tensor([n, d], zeroed: false)  // (N, D)
        rmsNorm(input, weight: norm, rows: n, into: normed)
        let keySource = memory?.0 ?? normed  // (N or Ns, D)
        let q = workspace.tensor([n, hk], zeroed: false)            // (N, H·K)
        let k = workspace.tensor([keyRows.rows, hk], zeroed: false)  // (N or Ns, H·K)
        let v = workspace.tensor([keyRows.rows, hk], zeroed: false)
        GEMM.trainingLinear(normed.pointer, rows: n, inFeatures: d, weight: w.q.pointer, outFeatures: hk, into: q.pointer)
        GEMM.trainingLinear(keySource.pointer, rows: keyRows.rows, inFeatures: d, weight: w.k.pointer, outFeatures: hk, into: k.pointer)
        GEMM.trainingLinear(keySource.pointer, rows: keyRows.rows, inFeatures: d, weight: w.v.pointer, outFeatures: hk, into: v.pointer)

        var offsets = [Int](), total = 0, largest = 0, work = 0
        for b in 0..<queries.count {
            offsets.append(total)
            total += heads * queries.lengths[b] * keyRows.lengths[b]
            largest = max(largest, queries.lengths[b] * keyRows.lengths[b])
            work += 2 * heads * queries.lengths[b] * keyRows.lengths[b] * dk
        }
        let probabilities = workspace.tensor([total], zeroed: false)
        let probabilityMask = dropoutRate > 0 ? workspace.tensor([total], zeroed: false) : nil
        // The masks are drawn before the heads run, in (sequence, head) order: the generator's stream, hence
        // every mask, does not depend on how the heads are split across threads.
        if let probabilityMask {
            for b in 0..<queries.count {
                Dropout.makeMask(
                    rate: dropoutRate, count: heads * queries.lengths[b] * keyRows.lengths[b], generator: &generator,
                    into: probabilityMask.pointer + offsets[b])
            }
        }
        // Heads are independent: each thread takes a contiguous range of heads, for every sequence, with its
        // own scratch for the dropped-out probabilities.
        let parts = Parallel.chunks(heads, cost: work)
        let dropped = workspace.tensor([dropoutRate > 0 ? parts * largest : 0], zeroed: false)
        let context = workspace.tensor([n, hk], zeroed: false)  // (N, H·K)
        Parallel.run(parts) { part in
            for h in heads * part / parts ..< heads * (part + 1) / parts {
                for b in 0..<queries.count {
                    let tq = queries.lengths[b], l = keyRows.lengths[b]
                    let qOffset = queries.first[b] * hk + h * dk, kOffset = keyRows.first[b] * hk + h * dk
                    let pOffset = offsets[b] + h * tq * l
                    Attention.trainingForward(
                        q: q.pointer + qOffset, ldq: hk, keys: k.pointer + kOffset, ldk: hk, values: v.pointer + kOffset, ldv: hk,
                        queries: tq, keyLength: l, headDim: dk, causal: causal,
                        bias: bias.map { .relative($0.center(h), maxDistance: $0.maxDistance) } ?? .none,
                        probabilities: probabilities.pointer + pOffset,
                        dropoutMask: probabilityMask.map { UnsafePointer($0.pointer + pOffset) },
                        dropped: dropped.pointer + part * largest,
                        out: context.pointer + qOffset, ldo: hk)
                }
            }
        }

        let output = workspace.tensor([n, d], zeroed: false)  // (N, D) input + dropout(context · Woᵀ)
        let projected = workspace.tensor([n, d], zeroed: false)
        GEMM.trainingLinear(context.pointer, rows: n, inFeatures: hk, weight: w.o.pointer, outFeatures: d, into: projected.pointer)
        let outputMask = residual(input, branch: projected, rows: n, into: output, &generator)
        let saved = AttentionActivations(
            input: input, normed: normed, q: q, k: k, v: v, probabilities: probabilities,
            probabilityMask: probabilityMask, offsets: offsets, context: context, outputMask: outputMask)
        return (saved, output)
    }

    /// One feed-forward sub-layer: output = input + dropout(wo(dropout(act(wi·h) (⊙ wi_1·h)))), h = RMSNorm(input).
    func feedForward(
        _ w: FeedForwardWeights, norm: Tensor, input: Tensor, rows n: Int, generator: inout SeededGenerator
    ) -> (saved: FeedForwardActivations, output: Tensor) {
        let d = config.dModel, f = config.dFF
        let normed = workspace.tensor([n, d], zeroed: false)  // (N, D)
        rmsNorm(input, weight: norm, rows: n, into: normed)
        let gate = workspace.tensor([n, f], zeroed: false)  // (N, F)
        GEMM.trainingLinear(normed.pointer, rows: n, inFeatures: d, weight: w.wi.pointer, outFeatures: f, into: gate.pointer)
        var linear: Tensor?
        if let wi1 = w.wiLinear {
            let l = workspace.tensor([n, f], zeroed: false)
            GEMM.trainingLinear(normed.pointer, rows: n, inFeatures: d, weight: wi1.pointer, outFeatures: f, into: l.pointer)
            linear = l
        }
        // hidden = dropout(act(gate) (⊙ linear)) in one pass over row slices, after drawing its mask.
        let hiddenMask = dropoutMask(n * f, &generator)
        let hidden = workspace.tensor([n, f], zeroed: false)  // (N, F)
        forEachSlice(n, cost: 4 * n * f) { r in
            let offset = r.lowerBound * f, count = r.count * f
            (hidden.pointer + offset).update(from: gate.pointer + offset, count: count)
            if let linear {
                Activations.gatedForward(config.activation, gate: hidden.pointer + offset, linear: linear.pointer + offset, count)
            } else {
                Activations.forward(config.activation, hidden.pointer + offset, count)
            }
            if let hiddenMask { Vector.multiply(hidden.pointer + offset, by: hiddenMask.pointer + offset, count) }
        }
        let output = workspace.tensor([n, d], zeroed: false)  // (N, D) input + dropout(hidden · Woᵀ)
        let projected = workspace.tensor([n, d], zeroed: false)
        GEMM.trainingLinear(hidden.pointer, rows: n, inFeatures: f, weight: w.wo.pointer, outFeatures: d, into: projected.pointer)
        let outputMask = residual(input, branch: projected, rows: n, into: output, &generator)
        let saved = FeedForwardActivations(
            input: input, normed: normed, gate: gate, linear: linear, hidden: hidden,
            hiddenMask: hiddenMask, outputMask: outputMask)
        return (saved, output)
    }
}
