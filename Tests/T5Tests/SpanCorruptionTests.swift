import Foundation
import Testing
@testable import T5

/// T5's span corruption against the reference functions (Tests/Fixtures/pretrain/span-corruption.json, from
/// tools/make_pretrain_fixtures.py), its guarantees on seeded chunks, and a training step on a
/// span-corruption batch against PyTorch.
@Suite struct SpanCorruptionTests {
    struct Reference: Decodable {
        struct Lengths: Decodable {
            let input_length: Int
            let noise_density: Double
            let mean_span_length: Double
            let tokens_length: Int
            let targets_length: Int
            let transformers_tokens_length: Int
            let ok: Bool
            let noise_tokens: Int?
            let noise_spans: Int?
        }
        struct Sentinels: Decodable {
            let ids: [Int]
            let mask: [Bool]
            let input_ids: [Int]
            let labels: [Int]
        }
        struct Training: Decodable {
            let input_length: Int
            let noise_density: Double
            let mean_span_length: Double
            let tokens_length: Int
            let chunks: [[Int]]
            let masks: [[Bool]]
            let input_ids: [[Int]]
            let labels: [[Int]]
            let loss: Float
            let optimizers: [String: TrainingFixtures.Reference.Optimizer]
        }
        let vocab: Int
        let eos: Int
        let lengths: [Lengths]
        let sentinels: [Sentinels]
        let training: Training
    }

    static func reference() throws -> Reference {
        let data = try Data(contentsOf: Fixtures.root.appendingPathComponent("pretrain/span-corruption.json"))
        return try JSONDecoder().decode(Reference.self, from: data)
    }

    /// A tokenizer of `size` ids with T5's 100 sentinels at the top (`<extra_id_n>` = size − 1 − n), for raw-id
    /// fixtures; it is never asked to encode.
    struct IDTokenizer: Tokenizer {
        let size: Int
        var ordinaryIDs: Range<Int> { 3..<(size - 100) }
        var sentinelCount: Int { 100 }
        func sentinelID(_ n: Int) -> Int { size - 1 - n }
        func piece(for id: Int) -> String? { (0..<size).contains(id) ? "<\(id)>" : nil }
        func encode(_ text: String, appendEOS: Bool) -> [Int] { [] }
        func decode(_ ids: [Int]) -> String { ids.map(String.init).joined(separator: " ") }
        var summary: String { "ids" }
        var files: [String: Data] { [:] }
    }

    @Test func lengthsAndCountsMatchTheReference() throws {
        let reference = try Self.reference()
        for c in reference.lengths {
            let (tokens, targets) = SpanCorruption.inputAndTargetLengths(
                inputLength: c.input_length, noiseDensity: c.noise_density, meanSpanLength: c.mean_span_length)
            let label = "(\(c.input_length), \(c.noise_density), \(c.mean_span_length))"
            #expect(tokens == c.tokens_length && targets == c.targets_length, "\(label): \(tokens), \(targets)")
            let corruption = try? SpanCorruption(inputLength: c.input_length, noiseDensity: c.noise_density,
                                                 meanSpanLength: c.mean_span_length, sentinelCount: .max)
            // Accepted exactly where the reference collator produces the promised lengths (the sentinel
            // supply, which the reference does not check, is left out here).
            #expect((corruption != nil) == c.ok, "\(label): accepted \(corruption != nil), reference ok \(c.ok)")
            if let corruption {
                #expect(corruption.noiseTokens == c.noise_tokens && corruption.noiseSpans == c.noise_spans, "\(label)")
                #expect(corruption.targetLength == c.targets_length)
            }
        }
        // transformers' copy starts its search one higher; where that changes the length its collator fails.
        let differing = reference.lengths.filter { $0.transformers_tokens_length != $0.tokens_length }
        #expect(!differing.isEmpty)
    }

    @Test func sentinelsAndFilteringMatchTheReference() throws {
        let reference = try Self.reference()
        let tokenizer = IDTokenizer(size: reference.vocab)
        for c in reference.sentinels {
            let example = SpanCorruption.corrupt(c.ids, mask: c.mask, tokenizer: tokenizer)
            #expect(example.inputIDs == c.input_ids, "mask \(c.mask)")
            #expect(example.targetIDs == c.labels, "mask \(c.mask)")
        }
    }

    /// `ids` with each sentinel of `input` replaced by the span that follows it in `target`.
    static func interleave(input: [Int], target: [Int], tokenizer: any Tokenizer) -> [Int]? {
        let sentinels = (tokenizer.size - tokenizer.sentinelCount)..<tokenizer.size
        var spans = [Int: [Int]](), current: Int?
        for id in target.dropLast() {
            if sentinels.contains(id) {
                current = id
                spans[id] = []
            } else if let s = current {
                spans[s]?.append(id)
            } else {
                return nil
            }
        }
        var out = [Int]()
        for id in input.dropLast() {
            if sentinels.contains(id) {
                guard let span = spans[id] else { return nil }
                out += span
            } else {
                out.append(id)
            }
        }
        return out
    }

    @Test func seededChunksInterleaveBackWithExactLengthsAndOrderedSentinels() throws {
        let tokenizer = IDTokenizer(size: 32100)
        for (input, density, span) in [(128, 0.15, 3.0), (24, 0.15, 3.0), (64, 0.5, 2.0), (40, 0.3, 1.0)] {
            let c = try SpanCorruption(inputLength: input, noiseDensity: density, meanSpanLength: span, sentinelCount: 100)
            var generator = SeededGenerator(seed: 9)
            for index in 0..<300 {
                let chunk = (0..<c.rawLength).map { _ in 3 + generator.uniformIndex(below: 31000) }
                let e = c.corrupt(chunk, index: index, seed: 5, tokenizer: tokenizer)
                #expect(e.inputIDs.count == input && e.targetIDs.count == c.targetLength)
                #expect(e.inputIDs.last == 1 && e.targetIDs.last == 1)
                #expect(!e.inputIDs.dropLast().contains(1) && !e.targetIDs.dropLast().contains(1))
                let inInput = e.inputIDs.filter { $0 >= 32000 }, inTarget = e.targetIDs.filter { $0 >= 32000 }
                #expect(inInput == (0..<c.noiseSpans).map { tokenizer.sentinelID($0) }, "sentinels in order")
                #expect(inTarget == inInput)
                #expect(e.targetIDs.first == tokenizer.sentinelID(0), "the target starts with <extra_id_0>")
                #expect(e.inputIDs.first! < 32000, "spans start with non-noise")
                #expect(Self.interleave(input: e.inputIDs, target: e.targetIDs, tokenizer: tokenizer) == chunk)
            }
        }
    }

    /// The segmentation is uniform: over N seeded chunks (inputs 128: 141 raw tokens, 21 noise tokens in 7
    /// spans), the first noise span has length 1 with probability C(19, 5) / C(20, 6) = 0.3 (compositions of 21
    /// into 7 positive parts), and the first non-noise span (120 tokens in 7 parts) has mean 120 / 7. Each
    /// estimate must lie within 4 standard errors of its value (a false alarm about once in 16,000 runs; the
    /// seeds are fixed, so the test is deterministic).
    @Test func noiseFractionAndSpanLengthsFollowTheSettings() throws {
        let c = try SpanCorruption(inputLength: 128, noiseDensity: 0.15, meanSpanLength: 3, sentinelCount: 100)
        #expect(c.rawLength == 141 && c.noiseTokens == 21 && c.noiseSpans == 7)
        let n = 4000
        var firstNoiseIsOne = 0, firstKeep = [Double](), noise = 0, spans = 0
        for index in 0..<n {
            var generator = RandomStream.spanCorruption.generator(seed: 11, index, 0)
            let mask = c.noiseMask(generator: &generator)
            noise += mask.filter { $0 }.count
            spans += zip(mask, [false] + mask).filter { $0 && !$1 }.count
            let keep = mask.firstIndex(of: true)!
            firstKeep.append(Double(keep))
            let end = mask[keep...].firstIndex(of: false) ?? mask.count
            if end - keep == 1 { firstNoiseIsOne += 1 }
        }
        // Every chunk has exactly the counts the settings give (0.149 of the tokens, mean span 3).
        #expect(noise == 21 * n && spans == 7 * n)
        let p = 0.3, observed = Double(firstNoiseIsOne) / Double(n)
        #expect(abs(observed - p) <= 4 * (p * (1 - p) / Double(n)).squareRoot(), "P(first noise span = 1) \(observed)")
        let mean = firstKeep.reduce(0, +) / Double(n)
        let sd = (firstKeep.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1)).squareRoot()
        #expect(abs(mean - 120.0 / 7) <= 4 * sd / Double(n).squareRoot(), "mean first non-noise span \(mean)")
    }

    @Test func refusesBadSettingsInOneLine() {
        func reason(_ inputLength: Int, _ density: Double = 0.15, _ span: Double = 3) -> String {
            do {
                _ = try SpanCorruption(inputLength: inputLength, noiseDensity: density, meanSpanLength: span, sentinelCount: 100)
            } catch {
                return error.description
            }
            return "accepted"
        }
        #expect(reason(512, 0).contains("noiseDensity: must be in (0, 1)"))
        #expect(reason(512, 1).contains("noiseDensity"))
        #expect(reason(512, 0.15, 0.5).contains("meanSpanLength: must be at least 1"))
        #expect(reason(2).contains("inputLength: must be at least 3"))
        #expect(reason(8).contains("inputLength: 8 is too small"))
        #expect(reason(512, 0.3, 1).contains("needs 153 sentinels"))
    }

    @Test func aSpanCorruptionBatchTrainsAsInPyTorch() throws {
        try ParallelSettings.scoped {
            let reference = try Self.reference()
            let r = reference.training
            let tokenizer = IDTokenizer(size: reference.vocab)
            let corruption = try SpanCorruption(inputLength: r.input_length, noiseDensity: r.noise_density,
                                                meanSpanLength: r.mean_span_length, sentinelCount: 100)
            #expect(corruption.rawLength == r.tokens_length)
            let examples = zip(r.chunks, r.masks).map { SpanCorruption.corrupt($0, mask: $1, tokenizer: tokenizer) }
            #expect(examples.map(\.inputIDs) == r.input_ids && examples.map(\.targetIDs) == r.labels)
            let data = try TrainingData(tasks: [TaskData(source: TaskSource(path: "span corruption"), examples: examples)])
            let variant = "t5-relu-tied"
            for (name, optimizer) in [("adafactor_relative", OptimizerChoice.adafactor(.init())),
                                      ("adamw", .adamW(.init(learningRate: 1e-3, weightDecay: 0.01)))] {
                let archive = try SafeTensorsArchive(file: Fixtures.root.appendingPathComponent("pretrain/" + (try #require(r.optimizers[name])).file))
                var expected = [String: [Float]]()
                for key in archive.keys { expected[key] = try archive.tensor(key).array }
                let losses = try #require(r.optimizers[name]).losses_before_each_step
                #expect(losses[0] == r.loss)
                var options = TrainingOptions()
                options.optimizer = optimizer
                options.batchSize = examples.count
                options.length = .steps(3)
                options.maxGradNorm = 0
                options.dropout = 0
                let trainer = try Trainer(model: try TrainingFixtures.model(variant), training: data, options: options)
                let initial = trainer.store.values.mapValues(\.array)
                for k in 0..<3 {
                    let report = try trainer.step()
                    #expect(abs(report.loss - Double(losses[k])) <= 1e-4 * Double(losses[k]), "\(name) step \(k + 1): loss \(report.loss) vs \(losses[k])")
                }
                for spec in trainer.store.specs {
                    let start = try #require(initial[spec.key])
                    let ours = zip(try #require(trainer.store.values[spec.key]).array, start).map { $0 - $1 }
                    let theirs = zip(try #require(expected[spec.key]), start).map { $0 - $1 }
                    let d = relativeL2(ours, theirs)
                    #expect(d <= 1e-3, "\(name) \(spec.key): 3-step update differs from PyTorch's by relative L2 \(d)")
                }
            }
        }
    }
}
