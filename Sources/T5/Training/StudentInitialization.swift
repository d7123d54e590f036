/// Which teacher blocks a smaller student starts from, per stack: shrink-and-fine-tune (Shleifer & Rush 2020,
/// `make_student.py` in transformers' examples/research_projects/seq2seq-distillation). Student block `i` of a
/// stack is a copy of teacher block `encoder[i]` (or `decoder[i]`).
public struct StudentLayers: Sendable, Equatable {
    public var encoder: [Int]
    public var decoder: [Int]

    public init(encoder: [Int], decoder: [Int]) {
        self.encoder = encoder
        self.decoder = decoder
    }

    /// make_student.py's `LAYERS_TO_COPY`: teacher depth → student depth → the teacher layers to copy. Not
    /// exactly alternating: the first and last layers are always kept.
    public static let layersToCopy: [Int: [Int: [Int]]] = [
        12: [1: [0], 2: [0, 6], 3: [0, 6, 11], 4: [0, 4, 8, 11], 6: [0, 2, 4, 7, 9, 11],
             9: [0, 1, 2, 4, 5, 7, 9, 10, 11], 12: Array(0..<12)],
        16: [1: [0], 2: [0, 15], 3: [0, 8, 15], 4: [0, 5, 10, 15], 6: [0, 3, 6, 9, 12, 15],
             8: [0, 2, 4, 6, 8, 10, 12, 15], 9: [0, 1, 3, 5, 7, 9, 11, 13, 15],
             12: [0, 1, 2, 3, 4, 5, 6, 7, 9, 11, 13, 15], 16: Array(0..<16)],
        6: [1: [0], 2: [0, 5], 3: [0, 2, 5], 4: [0, 1, 3, 5], 6: Array(0..<6)],
    ]

    /// The layers `make_student.py`'s `pick_layers_to_copy(student, teacher)` chooses: the table's entry, else
    /// (a pair it does not list) the first `student` layers, as it does after its warning. `isTabulated`
    /// says which.
    public static func picked(student: Int, teacher: Int) -> (layers: [Int], isTabulated: Bool) {
        if let layers = layersToCopy[teacher]?[student] { return (layers, true) }
        return (Array(0..<student), student == teacher)
    }

    /// The teacher layers `student` layers stand for when no copy says so (a hidden-state loss on a student not
    /// made from the teacher): the `LAYERS_TO_COPY` choice when tabulated, else spread evenly from the first to
    /// the last layer (i·(teacher − 1)/(student − 1), rounded).
    public static func evenlySpaced(student: Int, teacher: Int) -> [Int] {
        if let layers = layersToCopy[teacher]?[student] { return layers }
        if student <= 1 { return Array(0..<student) }
        return (0..<student).map { i in Int((Double(i * (teacher - 1)) / Double(student - 1)).rounded()) }
    }

    /// Throws `.invalidOption` naming `field` for an empty stack, an index outside the teacher's blocks or a
    /// repeated one.
    public func validate(teacher config: T5Config, field: String = "StudentLayers") throws(T5Error) {
        for (stack, layers, count) in [("encoder", encoder, config.numLayers), ("decoder", decoder, config.numDecoderLayers)] {
            if layers.isEmpty { throw .invalidOption(name: field, reason: "\(stack): no layers (a student needs at least one block per stack)") }
            if let bad = layers.first(where: { $0 < 0 || $0 >= count }) {
                throw .invalidOption(name: field, reason: "\(stack) layer \(bad) is out of range: the teacher's \(stack) has layers 0-\(count - 1)")
            }
            var seen = Set<Int>()
            if let repeated = layers.first(where: { !seen.insert($0).inserted }) {
                throw .invalidOption(name: field, reason: "\(stack) layer \(repeated) is given twice")
            }
        }
    }
}

extension T5Model {
    /// A smaller student made from this teacher (shrink-and-fine-tune): student block `i` of each stack copies
    /// teacher block `layers.encoder[i]` / `layers.decoder[i]`; the embedding, final layer norms and LM head are
    /// copied as they are. The config is the teacher's with `num_layers` and `num_decoder_layers` changed and
    /// make_student.py's `init_metadata` (teacher type, copied layers) added. Every value is a bit-exact copy.
    ///
    /// The relative position bias: T5 keeps one table per stack in block 0, which every block reads, so the
    /// student's block 0 owns the teacher's block-0 table whichever block it copies (make_student.py's
    /// `copy_layers` would fail to load a block without one into block 0). UMT5 gives each block its own,
    /// which travels with the block.
    ///
    /// Throws `.invalidOption` for bad `layers` (see `StudentLayers.validate`); needs fp32 weights.
    public func student(copying layers: StudentLayers) throws(T5Error) -> T5Model {
        try requireDecoder()
        guard weightPrecision == .f32 else {
            throw .invalidOption(name: "StudentLayers", reason: "the teacher's weights are \(weightPrecision.rawValue); a student is copied from fp32 weights")
        }
        try layers.validate(teacher: config)
        var updates = [String: JSONValue]()
        updates["num_layers"] = .integer(layers.encoder.count)
        updates["num_decoder_layers"] = .integer(layers.decoder.count)
        updates["init_metadata"] = .object(JSONObject([
            ("teacher_type", .string(config.variant.rawValue)),
            ("copied_encoder_layers", .array(layers.encoder.map { .integer($0) })),
            ("copied_decoder_layers", .array(layers.decoder.map { .integer($0) })),
        ]))
        let studentConfig = try T5Config(json: config.jsonData(updating: updates), path: "the student's config")
        let source = weights.byKey(config: config, separateLMHead: hasSeparateLMHead)
        var copied = [String: Tensor]()
        for spec in T5Parameters.specs(for: studentConfig, separateLMHead: hasSeparateLMHead) {
            var role = spec.role
            if let stack = role.stack, let block = role.block {
                let chosen = stack == .encoder ? layers.encoder : layers.decoder
                if case .positionBias = role, !config.variant.hasPerBlockRelativeBias {
                    role = role.moved(toBlock: 0)
                } else {
                    role = role.moved(toBlock: chosen[block])
                }
            }
            let key = role.key
            guard let tensor = source[key], tensor.shape == spec.shape else {
                throw .invalidOption(name: "StudentLayers", reason: "the teacher has no tensor \(key) of shape \(spec.shape)")
            }
            copied[spec.key] = tensor.copy()
        }
        let studentWeights = T5Weights(config: studentConfig, separateLMHead: hasSeparateLMHead) { key in
            // Every key the weights ask for is one of the specs filled above.
            copied[key] ?? Tensor(zeros: [0])
        }
        return T5Model(config: studentConfig, weights: studentWeights, tokenizer: tokenizer,
                       hasSeparateLMHead: hasSeparateLMHead, generationConfig: generationConfig)
    }
}
