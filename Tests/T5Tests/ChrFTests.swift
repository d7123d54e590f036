import Foundation
import Testing
@testable import T5

/// chrF against sacrebleu's (`tools/make_chrf_fixture.py`).
@Suite struct ChrFTests {
    struct Case: Decodable {
        let hypotheses: [String]
        let references: [String]
        let score: Double
    }

    @Test func corpusScoresMatchSacrebleu() throws {
        let cases = try Fixtures.reference([Case].self, "reference/chrf.json")
        #expect(cases.count >= 10)
        for c in cases {
            var chrF = ChrF()
            for (h, r) in zip(c.hypotheses, c.references) { chrF.add(hypothesis: h, reference: r) }
            #expect(abs(chrF.score - c.score) < 1e-9, "\(c.hypotheses) vs \(c.references): \(chrF.score), sacrebleu \(c.score)")
        }
    }
}
