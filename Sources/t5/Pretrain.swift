import ArgumentParser
import Foundation
import T5

struct Pretrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue pretraining (or pretrain from scratch) on unlabelled text with T5's span corruption.",
        discussion: """
            Text files are .txt (documents separated by a blank line, or one per line with \
            --one-document-per-line), .jsonl (one {"text": ...} object per line), or either gzip-compressed \
            (.gz). They are streamed: memory does not grow with their size. Each document is tokenized and \
            ends with </s>; the documents of all --text files are concatenated and cut into chunks whose \
            corrupted inputs are exactly --input-length tokens (run_t5_mlm_flax.py's \
            compute_input_and_target_lengths), the end of the corpus dropped. Each chunk loses random spans \
            (random_spans_noise_mask of the T5 code): each span becomes one sentinel <extra_id_N> in the \
            input, and the target lists each sentinel followed by its span, then </s>.

            OUT has the layout of `t5 finetune`: the model (loadable by transformers), checkpoint-N/ that \
            --resume continues from exactly, and metrics.jsonl. --print-examples N prints the first N \
            examples training would see (same seed, same order) as JSON lines and writes nothing.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Flag(help: "Start from randomly initialized weights (transformers' T5 initialization, seeded by --seed) instead of --model's; --model then needs only config.json and spiece.model.")
    var fromScratch = false

    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("Training text: .txt, .jsonl, or either .gz; repeat for several files (one corpus, in order).", valueName: "FILE"))
    var text: [String] = []
    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("Validation text, corrupted once with fixed masks and held in memory; repeatable.", valueName: "FILE"))
    var validText: [String] = []
    @Option(parsing: .unconditional, help: ArgumentHelp("Output directory.", valueName: "DIR"))
    var out: String?
    @Option(parsing: .unconditional, help: "Length of every corrupted input in tokens, </s> included.") var inputLength = 512
    @OptionGroup var spanCorruption: SpanCorruptionFlags
    @Option(parsing: .unconditional, help: ArgumentHelp("Print the first N training examples as JSON lines (source_ids, input_ids, target_ids, input, target) and exit without training or writing anything.", valueName: "N"))
    var printExamples: Int?

    @OptionGroup var trainingFlags: TrainingFlags
    @OptionGroup var runtime: RuntimeOptions
    @Flag(help: "Print a JSON summary of the run on stdout.") var json = false

    func validate() throws {
        if text.isEmpty { throw ValidationError("give at least one --text FILE") }
        if out == nil && printExamples == nil { throw ValidationError("missing --out DIR") }
        if let n = printExamples, n < 1 { throw invalidValue("--print-examples", "must be at least 1, got \(n)") }
        if let weights = modelOptions.weights, weights != .f32 {
            throw ValidationError("--weights \(weights.rawValue): training updates fp32 weights; convert the result afterwards (t5 convert)")
        }
        try checkWhileParsing { () throws(T5Error) in
            _ = try trainingFlags.options(evalMaxNewTokens: inputLength)
            // Every check that needs no tokenizer (the sentinel count is checked once it is loaded).
            _ = try SpanCorruption(inputLength: inputLength, noiseDensity: spanCorruption.noiseDensity,
                                   meanSpanLength: spanCorruption.meanSpanLength, sentinelCount: .max)
        }
        if trainingFlags.evalGenerate && validText.isEmpty { throw ValidationError("--eval-generate needs --valid-text") }
        if trainingFlags.evalEvery != nil && validText.isEmpty { throw ValidationError("--eval-every needs --valid-text") }
    }

    func run() async throws {
        runtime.apply()
        if let n = printExamples { return try printTrainingExamples(n) }
        let session = try TrainingSession(out: out ?? "", flags: trainingFlags, runtime: runtime, json: json)
        let (model, modelDirectory) = try session.loadModel(modelOptions, fromScratch: fromScratch)
        let frozen = try session.frozenKeys(model)
        let corruption = try spanCorruption.corruption(inputLength: inputLength, tokenizer: model.tokenizer)
        let options = try trainingFlags.options(evalMaxNewTokens: corruption.targetLength)
        let corpus = try SpanCorruptionCorpus(files: text, onePerLine: spanCorruption.oneDocumentPerLine,
                                              corruption: corruption, tokenizer: model.tokenizer)
        let training = try TrainingData(tasks: [TaskData(corpus: corpus)])
        var validation: TrainingData?
        var validCorpus: SpanCorruptionCorpus?
        if !validText.isEmpty {
            let held = try SpanCorruptionCorpus(files: validText, onePerLine: spanCorruption.oneDocumentPerLine,
                                                corruption: corruption, tokenizer: model.tokenizer)
            validCorpus = held
            validation = try TrainingData(tasks: [TaskData(source: TaskSource(path: held.name),
                                                           examples: try held.validationExamples(seed: options.seed))])
        }
        try session.train(model: model, modelDirectory: modelDirectory, fromScratch: fromScratch, training: training,
                          validation: validation, options: options, frozen: frozen) {
            note(TrainingSession.describe(corpus, label: "train"))
            if let validCorpus { note(TrainingSession.describe(validCorpus, label: "valid")) }
        }
    }

    struct Example: Encodable {
        let source_ids: [Int]
        let input_ids: [Int]
        let target_ids: [Int]
        let input: String
        let target: String
    }

    /// The first `count` examples of the batches training would take, in order.
    private func printTrainingExamples(_ count: Int) throws {
        let directory = try modelOptions.directory()
        let tokenizer = try TokenizerDirectory.load(directory)
        let corruption = try spanCorruption.corruption(inputLength: inputLength, tokenizer: tokenizer)
        let options = try trainingFlags.options(evalMaxNewTokens: corruption.targetLength)
        let corpus = try SpanCorruptionCorpus(files: text, onePerLine: spanCorruption.oneDocumentPerLine,
                                              corruption: corruption, tokenizer: tokenizer)
        var sampler = BatchSampler(data: try TrainingData(tasks: [TaskData(corpus: corpus)]), batchSize: options.batchSize,
                                   seed: options.seed, poolBatches: options.poolBatches)
        var printed = 0
        while printed < count {
            let batch = try sampler.next()
            for i in batch.inputIDs.indices where printed < count {
                try printJSON(Example(
                    source_ids: batch.sourceIDs[i], input_ids: batch.inputIDs[i], target_ids: batch.targetIDs[i],
                    input: SpanCorruption.visibleText(batch.inputIDs[i], tokenizer: tokenizer),
                    target: SpanCorruption.visibleText(batch.targetIDs[i], tokenizer: tokenizer)))
                printed += 1
            }
        }
    }
}
