extension TrainingPass {
    /// Walks the forward in reverse: dLogits (given) → LM head → decoder → encoder, adding every trainable
    /// parameter's gradient into `gradients` (laid out as `weights`; empty tensors for frozen ones).
    ///
    /// `dLogits` is the `logits` buffer after `CrossEntropy.backward` wrote the gradient over it. `blockInputs`
    /// holds further gradients of the residual stream entering blocks (a loss on hidden states), by stack and
    /// block: (N, D) each, added where the walk reaches that block's input.
    func backward(into gradients: T5Weights, blockInputs: [Stack: [Int: Tensor]] = [:]) {
        let d = config.dModel, nt = decoder.rows.rows
        // logits (Nt, V) = headInput (Nt, D) · lmHeadᵀ; when tied, lmHead is shared and so is its gradient.
        let dDecoderOutput = workspace.tensor([nt, d])  // (Nt, D)
        head.backward(
            logits.pointer, rows: nt, input: headInput.pointer, dWeight: gradientPointer(gradients.lmHead),
            dHidden: dDecoderOutput.pointer)
        let dMemory = workspace.tensor([encoder.rows.rows, d])  // (Ns, D) gradient of the encoder output
        decoderStack.backward(
            decoder, dOutput: dDecoderOutput,
            gradients: StackGradients(embedding: gradients.shared, blocks: gradients.decoderBlocks, finalNorm: gradients.decoderNorm),
            memory: (encoder.output, encoder.rows, dMemory), dBlockInputs: blockInputs[.decoder] ?? [:], workspace: workspace)
        encoderStack.backward(
            encoder, dOutput: dMemory,
            gradients: StackGradients(embedding: gradients.shared, blocks: gradients.encoderBlocks, finalNorm: gradients.encoderFinalNorm),
            memory: nil, dBlockInputs: blockInputs[.encoder] ?? [:], workspace: workspace)
    }
}

/// Where a stack's backward adds its parameters' gradients, laid out as the stack's weights (an empty tensor
/// for a frozen parameter, see `gradientPointer`).
struct StackGradients {
    let embedding: Tensor
    let blocks: [T5Block]
    let finalNorm: Tensor
}

extension T5Stack {
    /// Backward of `forward` with `record`, from `dOutput` (N, D), the gradient of the stack's output
    /// (consumed). For the decoder, `memory` carries the encoder output, its rows and the buffer its gradient
    /// accumulates in.
    func backward(
        _ a: StackActivations, dOutput: Tensor, gradients: StackGradients,
        memory: (output: Tensor, rows: RowBatch, dOutput: Tensor)?, dBlockInputs: [Int: Tensor], workspace: Workspace
    ) {
        let c = config, d = c.dModel, n = a.rows.rows
        let dBlocks = gradients.blocks, dEmbedding = gradients.embedding
        let mark = workspace.mark  // this stack's temporaries are free again on return
        defer { workspace.release(to: mark) }
        // output = dropout(RMSNorm(finalInput))
        if let mask = a.finalMask { multiply(dOutput, by: mask, n * d) }
        let dX = workspace.tensor([n, d])  // (N, D) gradient of the residual stream
        rmsNormBackward(dOutput, x: a.finalInput, weight: finalNorm, rows: n, dX: dX, dWeight: gradients.finalNorm, workspace)

        // Each table's per-distance gradients add up over the blocks that read it (every block of a T5 stack
        // reads block 0's; a UMT5 block its own), then go to the buckets.
        let owners = blocks.relativeBiasOwners
        var dBiases = [Int: Tensor]()  // owner block → (H, 2·clamp+1)
        for owner in Set(owners) where dBlocks[owner].relativeBias.flatMap(gradientPointer) != nil {
            dBiases[owner] = workspace.tensor([c.numHeads, biases[owner].width])
        }
        for (b, block) in blocks.enumerated().reversed() {
            let saved = a.blocks[b], dBlock = dBlocks[b], dBias = dBiases[owners[b]]
            feedForwardBackward(saved.feedForward, block.feedForward, dBlock.feedForward, rows: n, dX: dX, workspace)
            if let cross = saved.crossAttention, let layer = block.crossAttention, let dLayer = dBlock.crossAttention, let memory {
                attentionBackward(
                    cross, layer, dLayer, queries: a.rows, causal: false, bias: nil, dBias: nil, memory: memory, dX: dX, workspace)
            }
            attentionBackward(
                saved.selfAttention, block.selfAttention, dBlock.selfAttention, queries: a.rows,
                causal: isDecoder, bias: biases[b], dBias: dBias, memory: nil, dX: dX, workspace)
            // dX is now the gradient of the stream entering block b: a hidden-state loss adds its own.
            if let extra = dBlockInputs[b] { add(extra, into: dX, n * d) }
        }
        for (owner, dBias) in dBiases {
            guard let dTable = dBlocks[owner].relativeBias.flatMap(gradientPointer) else { continue }
            RelativePositionBias.backward(
                dValues: dBias.pointer, heads: c.numHeads, numBuckets: c.relativeAttentionNumBuckets,
                maxDistance: c.relativeAttentionMaxDistance, bidirectional: !isDecoder, into: dTable)
        }
        // x = dropout(embedding[ids])
        if let mask = a.embeddingMask { multiply(dX, by: mask, n * d) }
        if let dTable = gradientPointer(dEmbedding) {
            a.ids.withUnsafeBufferPointer { ids in
                Embedding.backward(ids: ids.baseAddress.unsafelyUnwrapped, count: n, dX: dX.pointer, dim: d, dTable: dTable)
            }
        }
    }

    /// Backward of an attention sub-layer: dX (N, D), the gradient of the sub-layer's output, becomes the
    /// gradient of its input (the residual passes it through; the branch adds to it). For cross-attention the
    /// key/value branch's gradient goes to `memory.dOutput` (each decoder sequence reads its own encoder
    /// sequence in training).
    private func attentionBackward(
        _ a: AttentionActivations, _ layer: SubLayer<AttentionWeights>, _ dLayer: SubLayer<AttentionWeights>,
        queries: RowBatch, causal: Bool, bias: RelativePositionBias?, dBias: Tensor?,
        memory: (output: Tensor, rows: RowBatch, dOutput: Tensor)?, dX: Tensor, _ workspace: Workspace
    ) {
        let w = layer.weights, dW = dLayer.weights
        let c = config, d = c.dModel, hk = innerDim, dk = c.dKV, heads = c.numHeads
        let n = queries.rows
        let keyRows = memory?.rows ?? queries
        let mark = workspace.mark  // the temporaries below are free again on return
        defer { workspace.release(to: mark) }
        // output = input + dropout(context · Woᵀ)
        let dProjected = a.outputMask.map { mask in dropoutBackward(dX, mask: mask, n * d, workspace) } ?? dX  // (N, D)
        let dContext = workspace.tensor([n, hk])  // (N, H·K)
        GEMM.linearBackward(
            dProjected.pointer, rows: n, outFeatures: d, x: a.context.pointer, inFeatures: hk, weight: w.o.pointer,
            dX: dContext.pointer, dWeight: gradientPointer(dW.o))

        // context = attention(q, k, v) per sequence and head
        let dQ = workspace.tensor([n, hk])             // (N, H·K)
        let dK = workspace.tensor([keyRows.rows, hk])  // (N or Ns, H·K)
        let dV = workspace.tensor([keyRows.rows, hk])
        var largest = 0, work = 0
        for b in 0..<queries.count {
            largest = max(largest, queries.lengths[b] * keyRows.lengths[b])
            work += 4 * heads * queries.lengths[b] * keyRows.lengths[b] * dk
        }
        // Heads are independent (each writes its own columns of dQ, dK, dV and its own row of dBias, in the
        // same sequence order as on one thread): each thread takes a contiguous range of heads, with its own
        // scratch.
        let threads = Parallel.threads
        let scratch = workspace.tensor([threads * 2 * largest], zeroed: false)
        Parallel.forEachSlice(heads, cost: work, scratchSlots: threads) { part, slice in
            for h in slice {
                for b in 0..<queries.count {
                    let tq = queries.lengths[b], l = keyRows.lengths[b]
                    let qOffset = queries.first[b] * hk + h * dk, kOffset = keyRows.first[b] * hk + h * dk
                    let pOffset = a.offsets[b] + h * tq * l
                    Attention.backward(
                        dOut: dContext.pointer + qOffset, ldo: hk,
                        q: a.q.pointer + qOffset, ldq: hk, keys: a.k.pointer + kOffset, ldk: hk, values: a.v.pointer + kOffset, ldv: hk,
                        queries: tq, keyLength: l, headDim: dk, causal: causal,
                        bias: bias.map { .relative($0.center(h), maxDistance: $0.maxDistance) } ?? .none,
                        probabilities: a.probabilities.pointer + pOffset,
                        dropoutMask: a.probabilityMask.map { UnsafePointer($0.pointer + pOffset) },
                        dQ: dQ.pointer + qOffset, dKeys: dK.pointer + kOffset, dValues: dV.pointer + kOffset,
                        dBias: bias.flatMap { b in dBias.map { b.center(h, in: $0.pointer) } },
                        scratch: scratch.pointer + part * 2 * largest)
                }
            }
        }

        // q = normed · Wqᵀ; k, v = (normed or memory) · Wk,vᵀ
        let dNormed = workspace.tensor([n, d])  // (N, D)
        GEMM.linearBackward(
            dQ.pointer, rows: n, outFeatures: hk, x: a.normed.pointer, inFeatures: d, weight: w.q.pointer,
            dX: dNormed.pointer, dWeight: gradientPointer(dW.q))
        let keySource = memory?.output ?? a.normed
        let dKeySource = memory?.dOutput ?? dNormed
        GEMM.linearBackward(
            dK.pointer, rows: keyRows.rows, outFeatures: hk, x: keySource.pointer, inFeatures: d, weight: w.k.pointer,
            dX: dKeySource.pointer, dWeight: gradientPointer(dW.k))
        GEMM.linearBackward(
            dV.pointer, rows: keyRows.rows, outFeatures: hk, x: keySource.pointer, inFeatures: d, weight: w.v.pointer,
            dX: dKeySource.pointer, dWeight: gradientPointer(dW.v))

        // normed = RMSNorm(input)
        rmsNormBackward(dNormed, x: a.input, weight: layer.norm, rows: n, dX: dX, dWeight: dLayer.norm, workspace)
    }

    /// Backward of a feed-forward sub-layer; dX (N, D) as in `attentionBackward`.
    private func feedForwardBackward(
        _ a: FeedForwardActivations, _ layer: SubLayer<FeedForwardWeights>, _ dLayer: SubLayer<FeedForwardWeights>,
        rows n: Int, dX: Tensor, _ workspace: Workspace
    ) {
        let w = layer.weights, dW = dLayer.weights
        let c = config, d = c.dModel, f = c.dFF
        let mark = workspace.mark  // the temporaries below are free again on return
        defer { workspace.release(to: mark) }
        // output = input + dropout(hidden · Woᵀ)
        let dProjected = a.outputMask.map { mask in dropoutBackward(dX, mask: mask, n * d, workspace) } ?? dX  // (N, D)
        let dHidden = workspace.tensor([n, f])  // (N, F)
        GEMM.linearBackward(
            dProjected.pointer, rows: n, outFeatures: d, x: a.hidden.pointer, inFeatures: f, weight: w.wo.pointer,
            dX: dHidden.pointer, dWeight: gradientPointer(dW.wo))
        // hidden = dropout(act(gate) (⊙ linear))
        if let mask = a.hiddenMask { multiply(dHidden, by: mask, n * f) }
        let dGate = workspace.tensor([n, f])  // (N, F)
        let dNormed = workspace.tensor([n, d])  // (N, D)
        if let linear = a.linear, let wi1 = w.linear {
            let dLinear = workspace.tensor([n, f])
            Parallel.forEachSlice(n * f, cost: 4 * n * f) { s in
                let o = s.lowerBound
                Activations.gatedBackward(
                    c.activation, gate: a.gate.pointer + o, linear: linear.pointer + o, dY: dHidden.pointer + o,
                    dGate: dGate.pointer + o, dLinear: dLinear.pointer + o, s.count)
            }
            GEMM.linearBackward(
                dLinear.pointer, rows: n, outFeatures: f, x: a.normed.pointer, inFeatures: d, weight: wi1.pointer,
                dX: dNormed.pointer, dWeight: dW.linear.flatMap(gradientPointer))
        } else {
            Parallel.forEachSlice(n * f, cost: 2 * n * f) { s in
                Activations.backward(
                    c.activation, x: a.gate.pointer + s.lowerBound, dY: dHidden.pointer + s.lowerBound,
                    dX: dGate.pointer + s.lowerBound, s.count)
            }
        }
        // gate = normed · Wiᵀ
        GEMM.linearBackward(
            dGate.pointer, rows: n, outFeatures: f, x: a.normed.pointer, inFeatures: d, weight: w.gate.pointer,
            dX: dNormed.pointer, dWeight: gradientPointer(dW.gate))
        // normed = RMSNorm(input)
        rmsNormBackward(dNormed, x: a.input, weight: layer.norm, rows: n, dX: dX, dWeight: dLayer.norm, workspace)
    }

    // MARK: Elementwise passes, in slices across threads

    /// x (n) ← x ⊙ mask.
    private func multiply(_ x: Tensor, by mask: Tensor, _ n: Int) {
        Parallel.forEachSlice(n, cost: n) { s in Vector.multiply(x.pointer + s.lowerBound, by: mask.pointer + s.lowerBound, s.count) }
    }

    /// y (n) += x.
    private func add(_ x: Tensor, into y: Tensor, _ n: Int) {
        Parallel.forEachSlice(n, cost: n) { s in Vector.add(x.pointer + s.lowerBound, into: y.pointer + s.lowerBound, s.count) }
    }

    /// Backward of a dropout on a sub-layer's branch: a new (n) buffer dY ⊙ mask.
    private func dropoutBackward(_ dY: Tensor, mask: Tensor, _ n: Int, _ workspace: Workspace) -> Tensor {
        let dX = workspace.tensor([n])
        Parallel.forEachSlice(n, cost: n) { s in
            Dropout.backward(dY.pointer + s.lowerBound, mask: mask.pointer + s.lowerBound, into: dX.pointer + s.lowerBound, s.count)
        }
        return dX
    }

    /// `RMSNorm.backward` over row slices across threads. The first slice adds its rows' weight gradient
    /// to `dWeight` directly, the others into rows of a zeroed scratch that are added afterwards in slice
    /// order (so the result depends on the thread count only through that summation order).
    private func rmsNormBackward(
        _ dY: Tensor, x: Tensor, weight: Tensor, rows n: Int, dX: Tensor, dWeight: Tensor, _ workspace: Workspace
    ) {
        let d = config.dModel
        let dW = gradientPointer(dWeight)
        let threads = Parallel.threads
        let partial = workspace.tensor([dW == nil ? 0 : (threads - 1) * d])  // (threads − 1, D), zeroed
        Parallel.forEachSlice(n, cost: 4 * n * d, scratchSlots: threads) { part, r in
            RMSNorm.backward(
                dY.pointer + r.lowerBound * d, x: x.pointer + r.lowerBound * d, weight: weight.pointer,
                epsilon: config.layerNormEpsilon, rows: r.count, dim: d, dX: dX.pointer + r.lowerBound * d,
                dWeight: dW.map { part == 0 ? $0 : partial.pointer + (part - 1) * d })
        }
        if let dW {
            // Parts that did not run left their rows zero.
            for p in 1..<max(threads, 1) { Vector.add(partial.pointer + (p - 1) * d, into: dW, d) }
        }
    }
}
