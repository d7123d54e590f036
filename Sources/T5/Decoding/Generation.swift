import Foundation

/// Teacher-forced log-probabilities of a target given an input.
public struct ScoredTarget: Sendable, Equatable, Codable {
    /// Target ids including the appended eos.
    public var ids: [Int]
    /// log p(ids[t] | input, ids[..<t]) for each position.
    public var logprobs: [Float]
    /// Sum of `logprobs`.
    public var total: Float
}

/// A token produced while streaming a single input.
public struct StreamedToken: Sendable, Equatable {
    public var id: Int
    /// The text this token adds to the decoded output so far (may be empty, e.g. for eos).
    public var text: String
}

extension T5Model {
    /// Tokenizes `text` (with `</s>`), cuts it to `truncateTo` tokens (its first `truncateTo - 1` and
    /// `</s>`, as the tokenizer's `truncation=True, max_length=` does), then enforces `maxInputTokens`.
    public func inputIDs(_ text: String, maxInputTokens: Int? = nil, truncateTo: Int? = nil) throws(T5Error) -> [Int] {
        var ids = tokenizer.encode(text)
        if let n = truncateTo, ids.count > n { ids = Array(ids.prefix(max(n - 1, 0))) + [tokenizer.eosID] }
        if let limit = maxInputTokens, ids.count > limit { throw .inputTooLong(tokens: ids.count, limit: limit) }
        return ids
    }

    /// Generates for each text; results are in input order, `numReturnSequences` per input.
    public func generate(_ texts: [String], options: GenerationOptions = .init()) throws(T5Error) -> [[GeneratedSequence]] {
        var ids = [[Int]]()
        for text in texts { ids.append(try inputIDs(text, maxInputTokens: options.maxInputTokens, truncateTo: options.truncateInputsTo)) }
        return try generate(ids: ids, options: options)
    }

    /// Generates for one text.
    public func generate(_ text: String, options: GenerationOptions = .init()) throws(T5Error) -> [GeneratedSequence] {
        try generate([text], options: options)[0]
    }

    /// Generates from token ids (each input should end with eos, as the tokenizer produces).
    /// All inputs are decoded together, and each input leaves the batch as soon as its output is final, so
    /// its result equals what it would get alone and a short output costs nothing while a long one runs on.
    ///
    /// Cancelling the calling `Task` stops the decoding within a step with `T5Error.cancelled`.
    public func generate(ids inputs: [[Int]], options: GenerationOptions = .init()) throws(T5Error) -> [[GeneratedSequence]] {
        try generate(ids: inputs, options: options, progress: nil)
    }

    /// `generate`, counting the decoder's steps and rows into `progress`.
    func generate(ids inputs: [[Int]], options: GenerationOptions, progress: DecodeProgress?) throws(T5Error) -> [[GeneratedSequence]] {
        try requireDecoder()
        try options.validate()
        try checkIDs(inputs)
        guard !inputs.isEmpty else { return [] }
        if options.numBeams > 1 {
            let encoded = try encode(inputs)
            var search = try BeamSearch(model: self, options: options, inputs: inputs.count)
            let results = try DecodeLoop.run(&search, model: self, encoded: encoded, initialPositions: BeamSearch.initialPositions(options), progress: progress)
            return results.map { $0.map { GeneratedSequence(ids: $0.ids, text: tokenizer.decode($0.ids), score: $0.score) } }
        }
        // Sampling several sequences per input: repeat each input, as transformers expands input_ids.
        let copies = options.sample ? options.numReturnSequences : 1
        let expanded = inputs.flatMap { Array(repeating: $0, count: copies) }
        let results = try tokenSearch(encoded: encode(expanded), options: options, progress: progress).map { result in
            GeneratedSequence(ids: result.ids, text: tokenizer.decode(result.ids), score: result.score, tokenScores: result.tokenScores)
        }
        return Swift.stride(from: 0, to: results.count, by: copies).map { Array(results[$0..<($0 + copies)]) }
    }

    /// Greedy search or sampling (transformers' `_sample`), one row per encoder row: per row, the generated
    /// ids (ending with eos when generated), the sum of their log-probs under the processed distribution and
    /// each of them.
    func tokenSearch(
        encoded: EncoderOutput, options: GenerationOptions, progress: DecodeProgress? = nil,
        onEvent: ((RowEvent) throws(T5Error) -> Void)? = nil
    ) throws(T5Error) -> [(ids: [Int], score: Float, tokenScores: [Float])] {
        let rows = Array(0..<encoded.batch), initial = min(options.maxNewTokens, DecodeLoop.initialPositions)
        if options.sample {
            var search = SamplingSearch(model: self, options: options, rowInputs: rows, initialPositions: initial)
            return try DecodeLoop.run(&search, model: self, encoded: encoded, initialPositions: initial, progress: progress, onEvent: onEvent)
        }
        var search = GreedySearch(model: self, options: options, rowInputs: rows, initialPositions: initial)
        return try DecodeLoop.run(&search, model: self, encoded: encoded, initialPositions: initial, progress: progress, onEvent: onEvent)
    }

    /// Streams the greedy or sampled output of one input token by token. The stream is pulled: the decoder
    /// runs on its own thread (never holding one of the concurrency pool's few threads for the whole
    /// generation) and computes a token only when the consumer has asked for it, so a slow consumer holds no
    /// backlog. Generation stops within a step once the stream terminates: when the consuming task is
    /// cancelled, or when the stream is released (a `for try await token in model.stream(...)` loop left
    /// early releases it).
    public func stream(_ text: String, options: GenerationOptions = .init()) -> AsyncThrowingStream<StreamedToken, Error> {
        streamAndTask(text, options: options).stream
    }

    /// The stream and a task that ends with its decode thread; the task's value is the number of tokens
    /// generated, which shows that a consumer who leaves stops the work.
    func streamAndTask(_ text: String, options: GenerationOptions) -> (stream: AsyncThrowingStream<StreamedToken, Error>, task: Task<Int, Never>) {
        let (tokens, continuation) = AsyncThrowingStream<StreamedToken, Error>.makeStream()
        let demand = StreamDemand()
        continuation.onTermination = { _ in demand.cancel() }
        let produce = { @Sendable () -> Int in
            var generated = [Int]()
            do {
                try requireDecoder()
                var opts = options
                opts.numReturnSequences = 1
                if opts.numBeams > 1 { throw T5Error.invalidOption(name: "GenerationOptions.numBeams", reason: "streaming supports greedy search and sampling only") }
                try opts.validate()
                let ids = try inputIDs(text, maxInputTokens: opts.maxInputTokens)
                var emitted = ""
                _ = try tokenSearch(encoded: encode([ids]), options: opts) { (event) throws(T5Error) in
                    guard case let .token(_, token) = event else { return }
                    try demand.wait()
                    generated.append(token)
                    let decoded = tokenizer.decode(generated)
                    let piece = decoded.hasPrefix(emitted) ? String(decoded.dropFirst(emitted.count)) : decoded
                    emitted = decoded
                    if case .terminated = continuation.yield(StreamedToken(id: token, text: piece)) { throw .cancelled }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
            return generated.count
        }
        // The decode thread does not inherit task-locals: it takes the caller's thread settings along.
        let scope = Parallel.currentScope
        let task = Task<Int, Never> {
            await withCheckedContinuation { (done: CheckedContinuation<Int, Never>) in
                let thread = Thread { done.resume(returning: Parallel.withScope(scope) { produce() }) }
                thread.name = "t5.stream"
                thread.start()
            }
        }
        // The consumer's iterator pulls through this wrapper: each `next()` grants the producer one token.
        let source = StreamSource(tokens)
        let stream = AsyncThrowingStream<StreamedToken, Error> {
            demand.grant()
            return try await source.next()
        }
        return (stream, task)
    }

    /// Teacher-forced scoring: log p(target | input) per target token, `</s>` appended to the target.
    public func score(input: String, target: String, maxInputTokens: Int? = nil, truncateTo: Int? = nil) throws(T5Error) -> ScoredTarget {
        try score(inputIDs: inputIDs(input, maxInputTokens: maxInputTokens, truncateTo: truncateTo), targetIDs: tokenizer.encode(target))
    }

    /// Teacher-forced scoring from ids: the decoder reads `[start] + target[..<last]` in one pass and each
    /// position's log-softmax is read at the next target id (labels shifted right, as transformers does).
    public func score(inputIDs: [Int], targetIDs: [Int]) throws(T5Error) -> ScoredTarget {
        try requireDecoder()
        try checkIDs([inputIDs, targetIDs])
        guard !targetIDs.isEmpty else { return ScoredTarget(ids: [], logprobs: [], total: 0) }
        let v = config.vocabSize
        let encoded = try encode([inputIDs])
        if Task.isCancelled { throw .cancelled }
        let state = try DecoderState(model: self, encoded: encoded, initialPositions: targetIDs.count)
        let slot = try state.cache.admit(input: 0)
        try state.forward(slots: [slot], tokens: [config.decoderStartTokenID] + targetIDs.dropLast(), counts: [targetIDs.count])
        var logprobs = [Float]()
        for (t, id) in targetIDs.enumerated() {
            let row = state.logits.pointer + t * v
            let normalizer = Softmax.logSumExp(row, v)
            // Finite logits give a finite normalizer and log-probability; a NaN would print as null.
            guard normalizer.isFinite, row[id].isFinite else {
                throw .nonFinite(what: "the logits of target position \(t + 1) (the model's activations overflowed)")
            }
            logprobs.append(row[id] - normalizer)
        }
        return ScoredTarget(ids: targetIDs, logprobs: logprobs, total: logprobs.reduce(0, +))
    }

    func checkIDs(_ sequences: [[Int]]) throws(T5Error) {
        for ids in sequences {
            if let bad = ids.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
                throw .invalidOption(name: "token id", reason: "\(bad) is outside the vocabulary 0..<\(config.vocabSize)")
            }
        }
    }
}
