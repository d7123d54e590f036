import Foundation
import Testing
@testable import T5

/// One model shared by many tasks at once: greedy, beam, sampling, scoring, streams (finished and left
/// early) and embeddings, concurrently, give what each gives alone. Run under ThreadSanitizer by
/// Fuzz/tsan.sh (in CI), which reports any data race these interleavings reach.
@Suite struct ConcurrencyTests {
    enum Answer: Equatable {
        case generated([[Int]])
        case score([Float])
        case streamed([Int])
        case embedding([[Float]])
    }

    static func requests(_ model: T5Model) -> [@Sendable () async throws -> Answer] {
        var options = GenerationOptions()
        options.maxNewTokens = 12
        let greedy = options
        options.numBeams = 2
        options.numReturnSequences = 2
        let beam = options
        options = greedy
        options.sample = true
        options.seed = 7
        let sample = options
        let texts = ["reverse: 3 1 4 1 5", "sort: 9 2 7", "a longer input with several words in it"]
        return [
            { .generated(try model.generate(texts, options: greedy).map { $0[0].ids }) },
            { .generated(try model.generate(texts[0], options: beam).map(\.ids)) },
            { .generated(try model.generate(texts, options: sample).map { $0[0].ids }) },
            { .score(try model.score(input: texts[1], target: "2 7 9").logprobs) },
            {
                var ids = [Int]()
                for try await token in model.stream(texts[2], options: greedy) { ids.append(token.id) }
                return .streamed(ids)
            },
            {
                var ids = [Int]()
                for try await token in model.stream(texts[0], options: greedy) {
                    ids.append(token.id)
                    if ids.count == 2 { break }
                }
                return .streamed(ids)
            },
            { .embedding(try model.embed(texts)) },
        ]
    }

    /// Ids equal; scores and vectors within 1e-5 (other tests may change the thread split meanwhile, which
    /// may reorder a sum: this test must not pin the settings, since holding that lock across an `await`
    /// would starve the cooperative threads that the other pinning tests block).
    static func agree(_ a: Answer, _ b: Answer) -> Bool {
        func near(_ x: [Float], _ y: [Float]) -> Bool { x.count == y.count && zip(x, y).allSatisfy { abs($0 - $1) <= 1e-5 } }
        switch (a, b) {
        case let (.generated(x), .generated(y)): return x == y
        case let (.streamed(x), .streamed(y)): return x == y
        case let (.score(x), .score(y)): return near(x, y)
        case let (.embedding(x), .embedding(y)): return x.count == y.count && zip(x, y).allSatisfy { near($0, $1) }
        default: return false
        }
    }

    @Test func concurrentRequestsOnOneModelMatchSerialOnes() async throws {
        let model = try Fixtures.model("t5-relu-tied")
        let requests = Self.requests(model)
        var serial = [Answer]()
        for request in requests { serial.append(try await request()) }
        let concurrent = try await withThrowingTaskGroup(of: (Int, Answer).self) { group in
            for round in 0..<3 {
                for (i, request) in requests.enumerated() {
                    group.addTask { (i, try await request()) }
                }
                _ = round
            }
            var all = [(Int, Answer)]()
            for try await answer in group { all.append(answer) }
            return all
        }
        #expect(concurrent.count == 3 * requests.count)
        for (i, answer) in concurrent { #expect(Self.agree(answer, serial[i]), "request \(i) differs when run concurrently") }
    }
}
