import CSentencePiece
import Foundation

/// Trains a `spiece.model` with libsentencepiece's own trainer (`SentencePieceTrainer`, the C++ library
/// behind `spm_train`) under the conventions of T5's released `spiece.model`: pad 0, eos 1, unk 2 and no
/// bos (`<pad>`, `</s>`, `<unk>`), the `nmt_nfkc` normalization with a dummy prefix and collapsed
/// whitespace. The 100 sentinels `<extra_id_N>` are not pieces: `T5Tokenizer` appends them after the
/// table, as transformers' `T5Tokenizer(extra_ids: 100)` does, so a model over this tokenizer has
/// `vocab_size` ≥ pieces + 100.
public struct TokenizerTraining: Sendable {
    public enum ModelType: String, Sendable, CaseIterable {
        case unigram, bpe
    }

    /// The number of pieces, the three special ones included.
    public var vocabSize: Int
    public var modelType: ModelType
    /// The fraction of characters the pieces must cover; the rarest others become `<unk>` (SentencePiece's
    /// default, 0.9995, suits alphabetic languages; 1.0 keeps every character).
    public var characterCoverage: Double
    /// At most this many sentences, drawn uniformly from the text with `seed` (reservoir sampling here,
    /// so the draw is reproducible; libsentencepiece 0.1.97 seeds its own sampling from the clock).
    /// nil: every sentence.
    public var inputSentenceSize: Int?
    public var seed: UInt64
    public var threads: Int

    public init(
        vocabSize: Int, modelType: ModelType = .unigram, characterCoverage: Double = 0.9995,
        inputSentenceSize: Int? = nil, seed: UInt64 = 0, threads: Int = T5Runtime.threads
    ) {
        self.vocabSize = vocabSize
        self.modelType = modelType
        self.characterCoverage = characterCoverage
        self.inputSentenceSize = inputSentenceSize
        self.seed = seed
        self.threads = threads
    }

    /// Checks the settings before any text is read.
    public func validate() throws(T5Error) {
        // 3 special pieces plus at least one of each byte value the text may need is not checkable here;
        // SentencePiece itself refuses a vocabulary larger than the text supports, with its reason.
        guard vocabSize >= 8 else { throw T5Error.invalidOption(name: "TokenizerTraining.vocabSize", reason: "must be at least 8, got \(vocabSize)") }
        guard vocabSize <= 1_000_000 else {
            throw T5Error.invalidOption(name: "TokenizerTraining.vocabSize", reason: "must be at most 1000000, got \(vocabSize)")
        }
        guard characterCoverage >= 0.98 && characterCoverage <= 1 else {
            // SentencePiece's own bound ([0.98, 1]), refused here in one line instead of by its CHECK.
            throw T5Error.invalidOption(
                name: "TokenizerTraining.characterCoverage", reason: "must be in [0.98, 1], got \(characterCoverage)")
        }
        if let inputSentenceSize, inputSentenceSize < 1 {
            throw T5Error.invalidOption(
                name: "TokenizerTraining.inputSentenceSize", reason: "must be at least 1, got \(inputSentenceSize)")
        }
        guard threads >= 1 else {
            throw T5Error.invalidOption(name: "TokenizerTraining.threads", reason: "must be at least 1, got \(threads)")
        }
    }

    /// The flags given to `SentencePieceTrainer::Train`, named as `spm_train`'s.
    var trainerFlags: [(String, String)] {
        [
            ("model_type", modelType.rawValue),
            ("vocab_size", String(vocabSize)),
            ("character_coverage", String(characterCoverage)),
            ("pad_id", "0"), ("eos_id", "1"), ("unk_id", "2"), ("bos_id", "-1"),
            ("pad_piece", "<pad>"), ("eos_piece", "</s>"), ("unk_piece", "<unk>"),
            ("normalization_rule_name", "nmt_nfkc"),
            ("add_dummy_prefix", "true"), ("remove_extra_whitespaces", "true"),
            // Our sample is already drawn; SentencePiece must take all of it.
            ("input_sentence_size", "0"), ("shuffle_input_sentence", "false"),
            ("num_threads", String(threads)),
            // SentencePiece logs every EM round on stderr; errors still come back as its status.
            ("minloglevel", "2"),
        ]
    }

    /// Trains over the sentences `next` returns (nil: no more), and returns the `spiece.model` bytes.
    public func train(
        sentences next: () throws(T5Error) -> String?
    ) throws(T5Error) -> (model: Data, sentences: Int) {
        try validate()
        var sample: [String] = []
        var seen = 0
        var generator = SeededGenerator(seed: seed)
        while let sentence = try next() {
            if sentence.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            seen += 1
            if let limit = inputSentenceSize, sample.count >= limit {
                // Algorithm R: the n-th sentence replaces a uniformly chosen one with probability limit / n.
                let slot = Int(generator.next() % UInt64(seen))
                if slot < limit { sample[slot] = sentence }
            } else {
                sample.append(sentence)
            }
        }
        guard !sample.isEmpty else {
            throw T5Error.invalidOption(name: "text", reason: "it holds no sentence to train a tokenizer on")
        }

        final class Feed {
            var sentences: [String]
            var index = 0
            var current: [CChar] = []
            init(_ sentences: [String]) { self.sentences = sentences }
        }
        let feed = Feed(sample)
        let source: csp_sentence_source = { context, text, length in
            let feed = Unmanaged<Feed>.fromOpaque(context!).takeUnretainedValue()
            guard feed.index < feed.sentences.count else { return 0 }
            feed.current = Array(feed.sentences[feed.index].utf8CString.dropLast())
            feed.index += 1
            feed.current.withUnsafeBufferPointer { buffer in
                text?.pointee = buffer.baseAddress
                length?.pointee = buffer.count
            }
            return 1
        }
        let flags = trainerFlags
        var keys = flags.map { strdup($0.0) }
        var values = flags.map { strdup($0.1) }
        defer {
            keys.forEach { free($0) }
            values.forEach { free($0) }
        }
        var model: UnsafeMutableRawPointer?
        var modelLength = 0
        var message: UnsafeMutablePointer<CChar>?
        let status = keys.withUnsafeMutableBufferPointer { keyBuffer in
            values.withUnsafeMutableBufferPointer { valueBuffer in
                keyBuffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: flags.count) { k in
                    valueBuffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: flags.count) { v in
                        withExtendedLifetime(feed) {
                            csp_train(k, v, flags.count, source, Unmanaged.passUnretained(feed).toOpaque(),
                                      &model, &modelLength, &message)
                        }
                    }
                }
            }
        }
        let reason = message.map { String(cString: $0) }
        if let message { csp_free(message) }
        guard status == CSP_OK, let model else {
            throw T5Error.tokenizer(path: "(training)", reason: "SentencePiece could not train: \(reason ?? "status \(status)")")
        }
        defer { csp_free(model) }
        return (Data(bytes: model, count: modelLength), sample.count)
    }
}

extension TokenizerTraining {
    /// The sentences of corpus files, in order, read as `t5 pretrain` reads them (`CorpusReader`, streamed,
    /// `.gz` looked through): each non-blank line of a text file, the `"text"` field of each line of a `.jsonl`
    /// file. Invalid UTF-8, malformed JSON and corrupt gzip are refused naming the file and the line.
    public static func sentences(of paths: [String]) -> () throws(T5Error) -> String? {
        var remaining = paths[...]
        var reader: CorpusReader?
        return { () throws(T5Error) -> String? in
            while true {
                if let document = try reader?.next() { return document.text }
                guard let path = remaining.popFirst() else { return nil }
                reader = try CorpusReader(path: path, format: .of(path, onePerLine: true))
            }
        }
    }
}
