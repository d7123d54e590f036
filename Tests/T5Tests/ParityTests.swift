import Foundation
import Testing
@testable import T5

/// The model against transformers: encoder states, teacher-forced log-probs, greedy, beam and batched
/// generation, for every fixture variant (relu+tied, gated-gelu+untied, gated-silu in BF16 shards,
/// gelu in F16 with the legacy layout).
@Suite struct ParityTests {
    static let names = Fixtures.modelNames

    func reference(_ name: String) throws -> ModelReference {
        try Fixtures.reference(ModelReference.self, "reference/\(name).json")
    }

    @Test(arguments: names) func encoderHiddenStates(name: String) throws {
        let model = try Fixtures.model(name)
        let ref = try reference(name).encoder_hidden
        let out = try model.encode([ref.input_ids])
        let actual = out.hidden.array
        let expected = ref.values.flatMap { $0 }
        let mismatch = firstMismatch(actual, expected, tolerance: 1e-4)
        #expect(mismatch == nil, "\(name) encoder: \(mismatch ?? "")")
    }

    @Test(arguments: names) func fullLogprobRows(name: String) throws {
        let model = try Fixtures.model(name)
        let ref = try reference(name).logprob_rows
        let v = model.config.vocabSize
        let state = try DecoderState(model: model, encoded: model.encode([ref.input_ids]), rowInput: [0], capacity: ref.target_ids.count)
        try state.forward(tokens: [model.config.decoderStartTokenID] + ref.target_ids.dropLast())
        for (t, expected) in ref.rows.enumerated() {
            var row = [Float](repeating: 0, count: v)
            row.withUnsafeMutableBufferPointer { Softmax.logSoftmax(state.logits.pointer + t * v, v, into: $0.baseAddress!) }
            let mismatch = firstMismatch(row, expected, tolerance: 1e-4)
            #expect(mismatch == nil, "\(name) position \(t): \(mismatch ?? "")")
        }
    }

    @Test(arguments: names) func teacherForcedScores(name: String) throws {
        let model = try Fixtures.model(name)
        for c in try reference(name).score {
            #expect(model.tokenizer.encode(c.input) == c.input_ids, "\(name) input ids of \(c.input.debugDescription)")
            let scored = try model.score(input: c.input, target: c.target)
            #expect(scored.ids == c.target_ids, "\(name) target ids of \(c.target.debugDescription)")
            let mismatch = firstMismatch(scored.logprobs, c.logprobs, tolerance: 1e-4)
            #expect(mismatch == nil, "\(name) \(c.input.debugDescription) → \(c.target.debugDescription): \(mismatch ?? "")")
            #expect(abs(scored.total - c.total) <= 1e-4 * max(1, abs(c.total)), "\(name) total \(scored.total) vs \(c.total)")
        }
    }

    /// Every scoring case at once through the packed stacks of a distillation teacher (no padding, targets of
    /// different lengths back to back): each row's log-prob of its label is transformers' score.
    @Test(arguments: names) func packedTeacherForcingMatchesScores(name: String) throws {
        let model = try Fixtures.model(name)
        let cases = try reference(name).score
        let logits = try model.teacherLogits(for: TrainingBatch(inputIDs: cases.map(\.input_ids), targetIDs: cases.map(\.target_ids)))
        let v = model.config.vocabSize
        var row = 0
        for c in cases {
            var actual = [Float]()
            for id in c.target_ids {
                var logprobs = [Float](repeating: 0, count: v)
                logprobs.withUnsafeMutableBufferPointer { Softmax.logSoftmax(logits.pointer + row * v, v, into: $0.baseAddress!) }
                actual.append(logprobs[id])
                row += 1
            }
            let mismatch = firstMismatch(actual, c.logprobs, tolerance: 1e-4)
            #expect(mismatch == nil, "\(name) \(c.input.debugDescription) → \(c.target.debugDescription): \(mismatch ?? "")")
        }
        #expect(row == logits.shape[0])
    }

    @Test(arguments: names) func greedy(name: String) throws {
        let model = try Fixtures.model(name)
        for c in try reference(name).greedy {
            let o = c.options
            let out = try model.generate(ids: [c.input_ids], options: o)[0][0]
            #expect(out.ids == c.ids, "\(name) greedy \(c.input.debugDescription) \(o): got \(out.ids), expected \(c.ids)")
            #expect(abs(out.score - c.score) <= 1e-4 * max(1, abs(c.score)), "\(name) greedy score \(out.score) vs \(c.score)")
        }
    }

    @Test(arguments: names) func beamSearch(name: String) throws {
        let model = try Fixtures.model(name)
        for c in try reference(name).beam {
            let o = c.options
            let out = try model.generate(ids: [c.input_ids], options: o)[0]
            let label = "\(name) beam \(c.num_beams) lp \(c.length_penalty) \(c.early_stopping.value) \(c.input.debugDescription)"
            #expect(out.map(\.ids) == c.outputs.map(\.ids), "\(label): got \(out.map(\.ids)), expected \(c.outputs.map(\.ids))")
            let mismatch = firstMismatch(out.map(\.score), c.outputs.map(\.score), tolerance: 1e-4)
            #expect(mismatch == nil, "\(label) scores: \(mismatch ?? "")")
        }
    }

    @Test(arguments: names) func paddedBatchMatchesTransformersAndSingleInputs(name: String) throws {
        let model = try Fixtures.model(name)
        for c in try reference(name).batch {
            var o = GenerationOptions()
            o.maxNewTokens = c.max_new_tokens
            // The fixture records the padded batch transformers ran; each input ends at its eos.
            let inputs = c.unpaddedInputs
            let batched = try model.generate(ids: inputs, options: o).map { $0[0] }
            #expect(batched.map(\.ids) == c.ids, "\(name) batch: got \(batched.map(\.ids)), expected \(c.ids)")
            for (i, ids) in inputs.enumerated() {
                let alone = try model.generate(ids: [ids], options: o)[0][0]
                #expect(alone.ids == batched[i].ids, "\(name) input \(i) alone differs from batched")
                #expect(abs(alone.score - batched[i].score) <= 1e-4 * max(1, abs(alone.score)))
            }
        }
    }

    @Test func relativePositionBuckets() throws {
        struct Case: Decodable {
            let bidirectional: Bool
            let num_buckets: Int
            let max_distance: Int
            let relative_positions: [Int]
            let buckets: [Int]
        }
        for c in try Fixtures.reference([Case].self, "reference/buckets.json") {
            let actual = c.relative_positions.map {
                RelativePositionBias.bucket(relativePosition: $0, bidirectional: c.bidirectional, numBuckets: c.num_buckets, maxDistance: c.max_distance)
            }
            #expect(actual == c.buckets, "buckets bidirectional=\(c.bidirectional) \(c.num_buckets)/\(c.max_distance)")
        }
    }
}

/// The same answers when every loop is forced onto two threads (the fixture models are too small for the
/// cost heuristic to split anything on its own).
@Suite struct ParallelParityTests {
    @Test(arguments: ["t5-relu-tied", "t5v11-gated-gelu"])
    func beamAndBatchOnTwoThreads(name: String) throws {
        try ParallelSettings.scoped(threads: 2, minimumCost: 0) {
            let model = try Fixtures.model(name)
            let ref = try Fixtures.reference(ModelReference.self, "reference/\(name).json")
            for c in ref.beam {
                let o = c.options
                let out = try model.generate(ids: [c.input_ids], options: o)[0]
                #expect(out.map(\.ids) == c.outputs.map(\.ids), "\(name) beam on 2 threads")
            }
            for c in ref.batch {
                var o = GenerationOptions()
                o.maxNewTokens = c.max_new_tokens
                let inputs = c.unpaddedInputs
                #expect(try model.generate(ids: inputs, options: o).map { $0[0].ids } == c.ids, "\(name) batch on 2 threads")
            }
            let s = ref.encoder_hidden
            let mismatch = firstMismatch(try model.encode([s.input_ids]).hidden.array, s.values.flatMap { $0 }, tolerance: 1e-4)
            #expect(mismatch == nil, "\(name) encoder on 2 threads: \(mismatch ?? "")")
        }
    }
}
