/// Word-level knowledge distillation (Hinton et al. 2015; Shleifer & Rush 2020, "Pre-trained Summarization
/// Distillation", arXiv 2010.13002, whose `distillation.py` this follows): over the target tokens of a step,
///
///     loss = α · CE(student, labels) + (1 − α) · τ² · KL(softmax(teacher / τ) ‖ softmax(student / τ))
///
/// CE and KL each the mean over the target tokens (KL summed over the whole vocabulary), as distillation.py's
/// `alpha_mlm · loss_mlm + alpha_ce · loss_ce` with `KLDivLoss(reduction="batchmean")` over the non-pad rows.
/// The τ² keeps the soft term's gradient on the scale of the hard term's as τ changes (Hinton et al. §2).
///
/// With `hiddenWeight` W > 0 the loss also has distillation.py's hidden-state term (`calc_hidden_loss`, as in
/// DistilBART's shrink-and-fine-tune): W times, for each stack, the squared difference between the residual
/// stream entering student block i and the one entering teacher block `hiddenLayers[i]`, summed over the
/// blocks and the model width and divided by (tokens · d_model) (the stack's source or target tokens). Unlike
/// distillation.py, which masks the decoder with `decoder_input_ids != pad` and so drops T5's first position
/// (its decoder start token is the pad), every target position counts.
///
/// The teacher runs on each micro-batch in inference mode (no dropout, no gradients; its encoder once per
/// batch) in whatever precision it was loaded in. With α = 1 it is not run at all: the objective is then
/// `CrossEntropyObjective`, so the run is exactly fine-tuning.
public struct DistillationObjective: BatchObjective {
    /// Shleifer & Rush's defaults: distillation.py's `alpha_mlm` 0.2 on the labels, `alpha_ce` 0.8 on the
    /// teacher, and the temperature of 2.0 it hard-codes.
    public static let defaultAlpha: Float = 0.2
    public static let defaultTemperature: Float = 2

    public let teacher: T5Model
    /// The weight of the cross-entropy against the labels, in [0, 1]; the KL term gets 1 − α.
    public let alpha: Float
    /// The softmax temperature τ > 0 of both distributions in the KL term.
    public let temperature: Float
    /// Label smoothing of the CE term (torch's `CrossEntropyLoss(label_smoothing:)`).
    public let labelSmoothing: Float
    /// What identifies the teacher in a resumed run's signature (its directory, say).
    public let teacherName: String
    /// The weight W ≥ 0 of the hidden-state term (0: none).
    public let hiddenWeight: Float
    /// The teacher block each student block's input is compared with; nil: `StudentLayers.evenlySpaced`.
    public let hiddenLayers: StudentLayers?

    /// Throws `.invalidOption` naming the library field for α outside [0, 1] or τ ≤ 0 (or not finite).
    public init(
        teacher: T5Model, alpha: Float = defaultAlpha, temperature: Float = defaultTemperature,
        labelSmoothing: Float = 0, teacherName: String = "teacher", hiddenWeight: Float = 0, hiddenLayers: StudentLayers? = nil
    ) throws(T5Error) {
        try Self.validate(alpha: alpha, temperature: temperature)
        guard hiddenWeight >= 0 && hiddenWeight.isFinite else {
            throw .invalidOption(name: "DistillationObjective.hiddenWeight", reason: "must be a finite number, at least 0, got \(hiddenWeight)")
        }
        if let hiddenLayers { try hiddenLayers.validate(teacher: teacher.config) }
        try teacher.requireDecoder()
        self.teacher = teacher
        self.alpha = alpha
        self.temperature = temperature
        self.labelSmoothing = labelSmoothing
        self.teacherName = teacherName
        self.hiddenWeight = hiddenWeight
        self.hiddenLayers = hiddenLayers
    }

    /// The checks of `init`, for callers that check flags before loading a teacher.
    public static func validate(alpha: Float, temperature: Float) throws(T5Error) {
        guard alpha >= 0 && alpha <= 1 else {
            throw .invalidOption(name: "DistillationObjective.alpha", reason: "must be in [0, 1], got \(alpha)")
        }
        guard temperature > 0 && temperature.isFinite else {
            throw .invalidOption(name: "DistillationObjective.temperature", reason: "must be a finite number above 0, got \(temperature)")
        }
    }

    /// Throws `.invalidOption` unless `student` has the teacher's vocabulary: the same `vocab_size` and the
    /// same tokenizer, token for token (the distributions are compared id by id); and, with a hidden-state
    /// term, the teacher's width and at most its depth per stack (or as many blocks as `hiddenLayers` names).
    public func requireCompatible(student: T5Model) throws(T5Error) {
        let name = "DistillationObjective.student"
        if hiddenWeight > 0 {
            let s = student.config, t = teacher.config
            if s.dModel != t.dModel {
                throw .invalidOption(name: "DistillationObjective.hiddenWeight", reason: "the student's d_model \(s.dModel) differs from the teacher's \(t.dModel); hidden states are compared element by element")
            }
            for (stack, depth, teacherDepth, mapped) in [("encoder", s.numLayers, t.numLayers, hiddenLayers?.encoder),
                                                          ("decoder", s.numDecoderLayers, t.numDecoderLayers, hiddenLayers?.decoder)] {
                if let mapped, mapped.count != depth {
                    throw .invalidOption(name: "DistillationObjective.hiddenWeight", reason: "the student's \(stack) has \(depth) blocks, the layer map \(mapped.count)")
                }
                if depth > teacherDepth {
                    throw .invalidOption(name: "DistillationObjective.hiddenWeight", reason: "the student's \(stack) has \(depth) blocks, more than the teacher's \(teacherDepth)")
                }
            }
        }
        if teacher.config.vocabSize != student.config.vocabSize {
            throw .invalidOption(name: name, reason: "the student's vocab_size \(student.config.vocabSize) differs from the teacher's \(teacher.config.vocabSize); distillation compares their distributions token by token")
        }
        let a = teacher.tokenizer, b = student.tokenizer
        if a.size != b.size {
            throw .invalidOption(name: name, reason: "the student's tokenizer has \(b.size) tokens, the teacher's \(a.size); they must be the same tokenizer")
        }
        if let id = (0..<a.size).first(where: { a.piece(for: $0) != b.piece(for: $0) }) {
            let theirs = (b.piece(for: id) ?? "").debugDescription, ours = (a.piece(for: id) ?? "").debugDescription
            throw .invalidOption(name: name, reason: "the student's tokenizer differs from the teacher's at id \(id) (\(theirs) vs \(ours)); they must be the same tokenizer")
        }
    }

    public func bound(to batch: TrainingBatch) throws(T5Error) -> any Objective {
        if alpha == 1 && hiddenWeight == 0 { return CrossEntropyObjective(labelSmoothing: labelSmoothing) }
        let outputs = try teacher.teacherForward(batch, recordingHiddenStates: hiddenWeight > 0)
        return WordLevelDistillation(
            teacherLogits: outputs.logits, alpha: alpha, temperature: temperature, labelSmoothing: labelSmoothing,
            hiddenWeight: hiddenWeight, hiddenLayers: hiddenLayers,
            teacherEncoderStates: outputs.encoderStates, teacherDecoderStates: outputs.decoderStates)
    }

    public var signature: [String: String] {
        var s = ["distill": "teacher \(teacherName), alpha \(alpha), temperature \(temperature)"]
        if hiddenWeight > 0 {
            s["distill_hidden"] = "weight \(hiddenWeight), layers " + (hiddenLayers.map { "encoder \($0.encoder), decoder \($0.decoder)" } ?? "evenly spaced")
        }
        return s
    }
}

/// `DistillationObjective` bound to one micro-batch: the teacher's logits of its target tokens, (Nt, V) in
/// the rows' order. Used once: `evaluate` turns the teacher's logits into scratch.
public struct WordLevelDistillation: Objective {
    let teacherLogits: Tensor
    let alpha: Float
    let temperature: Float
    let labelSmoothing: Float
    let hiddenWeight: Float
    let hiddenLayers: StudentLayers?
    /// The teacher's block inputs, all of its blocks (empty without a hidden-state term).
    let teacherEncoderStates: [Tensor]
    let teacherDecoderStates: [Tensor]

    public var usesHiddenStates: Bool { hiddenWeight > 0 }

    /// W · Σ_stack Σ_i ‖student_i − teacher_map(i)‖² / (rows · D); the gradient 2W(student − teacher)/(rows · D).
    public func hiddenStateLoss(_ states: BlockInputs, gradientScale: Float?) -> Double {
        guard hiddenWeight > 0 else { return 0 }
        var total = 0.0
        let stacks: [([Tensor], [Tensor], [Tensor]?, [Int]?)] = [
            (states.encoder, teacherEncoderStates, states.encoderGradients, hiddenLayers?.encoder),
            (states.decoder, teacherDecoderStates, states.decoderGradients, hiddenLayers?.decoder),
        ]
        for (student, teacher, gradients, mapped) in stacks {
            let map = mapped ?? StudentLayers.evenlySpaced(student: student.count, teacher: teacher.count)
            precondition(map.count == student.count && map.allSatisfy { $0 < teacher.count }, "hidden-state layer map \(map) for \(student.count) of \(teacher.count) blocks")
            var sum = 0.0, count = 0
            for (i, s) in student.enumerated() {
                let t = teacher[map[i]]
                precondition(s.count == t.count, "student hidden states \(s.shape) vs the teacher's \(t.shape)")
                count = s.count
                for j in 0..<s.count {
                    let e = Double(s.pointer[j]) - Double(t.pointer[j])
                    sum += e * e
                }
            }
            guard count > 0 else { continue }
            total += Double(hiddenWeight) * sum / Double(count)
            if let gradientScale, let gradients {
                let factor = gradientScale * 2 * hiddenWeight / Float(count)
                for (i, s) in student.enumerated() {
                    let t = teacher[map[i]], g = gradients[i]
                    for j in 0..<s.count { g.pointer[j] += factor * (s.pointer[j] - t.pointer[j]) }
                }
            }
        }
        return total
    }

    public func evaluate(
        logits: UnsafeMutablePointer<Float>, rows: Int, vocab: Int, labels: UnsafePointer<Int32>,
        scratch: UnsafeMutablePointer<Float>, gradientScale: Float?
    ) -> LossResult {
        precondition(teacherLogits.shape == [rows, vocab], "teacher logits \(teacherLogits.shape) for \(rows) rows of \(vocab)")
        let softWeight = (1 - alpha) * temperature * temperature
        if softWeight == 0 {
            // α = 1 with a hidden-state term: the label term alone here.
            return CrossEntropyObjective(labelSmoothing: labelSmoothing).evaluate(
                logits: logits, rows: rows, vocab: vocab, labels: labels, scratch: scratch, gradientScale: gradientScale)
        }
        // The soft term first, while `logits` still holds the student's logits; its gradient replaces the
        // teacher's logits, to be added once the hard term has written its own over `logits`.
        let kl = KLDivergence.forward(student: logits, teacher: teacherLogits.pointer, rows: rows, vocab: vocab, temperature: temperature)
        let (ceSum, tokens, correct) = CrossEntropy.forward(
            logits: logits, rows: rows, vocab: vocab, targets: labels, labelSmoothing: labelSmoothing,
            logSumExp: gradientScale == nil ? nil : scratch)
        let count = Double(max(tokens, 1))
        let loss = Double(alpha) * ceSum / count + Double(softWeight) * kl / count
        if let gradientScale {
            KLDivergence.backward(
                student: logits, logP: teacherLogits.pointer, rows: rows, vocab: vocab, temperature: temperature,
                scale: gradientScale * softWeight / Float(count))
            CrossEntropy.backward(
                logits: logits, rows: rows, vocab: vocab, targets: labels, labelSmoothing: labelSmoothing,
                scale: gradientScale * alpha / Float(count), logSumExp: scratch, into: logits)
            let n = rows * vocab, soft = teacherLogits.pointer
            Parallel.forEachSlice(n, cost: n) { s in Vector.add(soft + s.lowerBound, into: logits + s.lowerBound, s.count) }
        }
        return LossResult(loss: Float(loss), tokens: tokens, correct: correct)
    }
}
