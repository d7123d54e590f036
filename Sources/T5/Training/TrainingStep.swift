/// One batch of training pairs, unpadded: `targetIDs[i]` is the continuation of `inputIDs[i]` and ends with eos.
public struct TrainingBatch: Sendable {
    public var inputIDs: [[Int]]
    public var targetIDs: [[Int]]
    /// Per example, the raw chunk a span-corruption example was made from (empty for labelled examples);
    /// not used by training, shown by `t5 pretrain --print-examples`.
    public var sourceIDs: [[Int]] = []

    public init(inputIDs: [[Int]], targetIDs: [[Int]]) {
        self.inputIDs = inputIDs
        self.targetIDs = targetIDs
    }

    /// Number of target tokens, the denominator of the batch's mean loss.
    public var targetTokenCount: Int { targetIDs.reduce(0) { $0 + $1.count } }
}

/// The loss of one batch.
public struct LossResult: Sendable {
    /// Mean cross-entropy over the target tokens (label-smoothed when asked), as transformers'
    /// `CrossEntropyLoss(ignore_index=-100)` over the padded labels.
    public var loss: Float
    /// Number of target tokens the mean is over.
    public var tokens: Int
    /// Target tokens whose argmax prediction is the target (token accuracy = correct / tokens).
    public var correct: Int

    public init(loss: Float, tokens: Int, correct: Int) {
        self.loss = loss
        self.tokens = tokens
        self.correct = correct
    }
}

extension TrainingPass {
    /// The residual stream entering each block of both stacks (each block's saved self-attention input), and
    /// zero-filled gradient buffers for them when asked.
    func hiddenStates(withGradients: Bool) -> BlockInputs {
        let d = config.dModel
        func buffers(_ a: StackActivations) -> [Tensor] { a.blocks.map { _ in workspace.tensor([a.rows.rows, d]) } }
        return BlockInputs(
            dModel: d, encoder: encoder.blocks.map(\.selfAttention.input), decoder: decoder.blocks.map(\.selfAttention.input),
            encoderGradients: withGradients ? buffers(encoder) : nil, decoderGradients: withGradients ? buffers(decoder) : nil)
    }
}

extension ParameterStore {
    /// Forward + backward of one batch (train mode); adds `lossScale · ∂loss/∂θ` into `gradients` for every
    /// trainable θ, so that accumulating over k micro-batches is k calls with lossScale 1/k (or each one's
    /// share of the tokens, for a token-weighted mean).
    ///
    /// The decoder reads `[decoder_start_token_id] + target[..<last]` and predicts `target`, as
    /// T5ForConditionalGeneration does with `labels`. Dropout with `dropoutRate` is applied where transformers'
    /// T5 applies `config.dropout_rate` (see `TrainingPass`), with masks drawn from `generator`.
    /// `labelSmoothing` is torch's `CrossEntropyLoss(label_smoothing:)`.
    public func accumulateGradients(
        _ batch: TrainingBatch, dropoutRate: Float, labelSmoothing: Float, generator: inout SeededGenerator,
        lossScale: Float = 1
    ) -> LossResult {
        accumulateGradients(batch, objective: CrossEntropyObjective(labelSmoothing: labelSmoothing), dropoutRate: dropoutRate,
                            generator: &generator, lossScale: lossScale)
    }

    /// The same for any `objective`: its gradient over the logits is where the backward pass starts.
    public func accumulateGradients(
        _ batch: TrainingBatch, objective: any Objective, dropoutRate: Float, generator: inout SeededGenerator,
        lossScale: Float = 1
    ) -> LossResult {
        let pass = TrainingPass(
            weights: weights, config: config, inputs: batch.inputIDs, targets: batch.targetIDs,
            dropoutRate: dropoutRate, workspace: workspace, generator: &generator)
        let scratch = workspace.tensor([pass.labels.count], zeroed: false)
        var result = pass.labels.withUnsafeBufferPointer { labels in
            objective.evaluate(logits: pass.logits.pointer, rows: labels.count, vocab: config.vocabSize,
                               labels: labels.baseAddress.unsafelyUnwrapped, scratch: scratch.pointer, gradientScale: lossScale)
        }
        var blockInputs = [Stack: [Int: Tensor]]()
        if objective.usesHiddenStates {
            let states = pass.hiddenStates(withGradients: true)
            result.loss += Float(objective.hiddenStateLoss(states, gradientScale: lossScale))
            blockInputs[.encoder] = Dictionary(uniqueKeysWithValues: (states.encoderGradients ?? []).enumerated().map { ($0, $1) })
            blockInputs[.decoder] = Dictionary(uniqueKeysWithValues: (states.decoderGradients ?? []).enumerated().map { ($0, $1) })
        }
        pass.backward(into: gradientWeights, blockInputs: blockInputs)
        return result
    }

    /// The loss of one batch in eval mode (no dropout); gradients are untouched.
    public func evaluate(_ batch: TrainingBatch, labelSmoothing: Float = 0) -> LossResult {
        evaluate(batch, objective: CrossEntropyObjective(labelSmoothing: labelSmoothing))
    }

    /// The same for any `objective`.
    public func evaluate(_ batch: TrainingBatch, objective: any Objective) -> LossResult {
        var unused = SeededGenerator(seed: 0)  // no dropout: never drawn from
        let pass = TrainingPass(
            weights: weights, config: config, inputs: batch.inputIDs, targets: batch.targetIDs,
            dropoutRate: 0, workspace: workspace, generator: &unused)
        let scratch = workspace.tensor([pass.labels.count], zeroed: false)
        var result = pass.labels.withUnsafeBufferPointer { labels in
            objective.evaluate(logits: pass.logits.pointer, rows: labels.count, vocab: config.vocabSize,
                               labels: labels.baseAddress.unsafelyUnwrapped, scratch: scratch.pointer, gradientScale: nil)
        }
        if objective.usesHiddenStates {
            result.loss += Float(objective.hiddenStateLoss(pass.hiddenStates(withGradients: false), gradientScale: nil))
        }
        return result
    }
}
