import Foundation
import Testing
@testable import T5

/// The bundled model on a fixed sample of each task's held-out test split (`Tests/Fixtures/default-model`,
/// the first 100 test examples `tools/default_model_data.py` wrote): greedy outputs must score at least the
/// sample figures models/README.md states, minus a margin of 1 chrF point and 2 exact-match points (the
/// figures are this model's own, measured on this sample; the margin absorbs float summation order across
/// thread counts, which can flip a near-tie in greedy decoding).
@Suite struct DefaultModelTests {
    static let repository = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
    static let tasks = [
        ("en-es", "translate English to Spanish: "),
        ("es-en", "translate Spanish to English: "),
        ("en-de", "translate English to German: "),
    ]

    struct Pair: Decodable {
        let input: String
        let target: String
    }

    /// `| <task> | `<prefix>` | ... | sample chrF | sample exact match |` rows of models/README.md's score table:
    /// the last two numeric cells of the row whose first cells are the task's name and prefix.
    static func statedFigures() throws -> [String: (chrF: Double, exact: Double)] {
        let text = try String(contentsOf: repository.appendingPathComponent("models/README.md"), encoding: .utf8)
        var figures: [String: (Double, Double)] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| ") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            // The score table's rows name the prefix in their second cell; the data table's rows do not.
            guard let task = cells.first, let prefix = tasks.first(where: { $0.0 == task })?.1, cells.count > 2,
                  cells[1] == "`\(prefix.trimmingCharacters(in: .whitespaces))`" else { continue }
            let numbers = cells.compactMap { Double($0.replacingOccurrences(of: "%", with: "")) }
            guard numbers.count >= 2 else { continue }
            figures[task] = (numbers[numbers.count - 2], numbers[numbers.count - 1])
        }
        return figures
    }

    @Test func heldOutSampleScoresAtLeastWhatREADMEStates() throws {
        let figures = try Self.statedFigures()
        #expect(figures.count == Self.tasks.count, "models/README.md states sample figures for \(figures.keys.sorted())")
        let model = try T5Model(directory: Self.repository.appendingPathComponent("models/default"))
        let options = GenerationOptions(for: model)
        for (task, prefix) in Self.tasks {
            guard let stated = figures[task] else { continue }
            let lines = try String(contentsOf: Fixtures.root.appendingPathComponent("default-model/\(task).sample.jsonl"), encoding: .utf8)
                .split(separator: "\n")
            let pairs = try lines.map { try JSONDecoder().decode(Pair.self, from: Data($0.utf8)) }
            #expect(pairs.count == 100)
            let outputs = try model.generate(pairs.map { prefix + $0.input }, options: options)
            var chrF = ChrF()
            var exact = 0
            for (pair, output) in zip(pairs, outputs) {
                let text = output[0].text
                chrF.add(hypothesis: text, reference: pair.target)
                if text == pair.target { exact += 1 }
            }
            let exactPercent = 100 * Double(exact) / Double(pairs.count)
            #expect(chrF.score >= stated.chrF - 1, "\(task): chrF \(chrF.score), models/README.md states \(stated.chrF)")
            #expect(exactPercent >= stated.exact - 2, "\(task): exact match \(exactPercent)%, models/README.md states \(stated.exact)%")
        }
    }
}

extension DefaultModelTests {
    @Test func infoSaysWhatTheModelIsFor() throws {
        let r = try CLITests().run(["info", "--model", Self.repository.appendingPathComponent("models/default").path])
        let about = r.stdout.split(separator: "\n").first { $0.hasPrefix("about:") }
        #expect(about?.contains("translate English to Spanish: ") == true && about?.contains("It knows nothing else") == true, "\(r)")
    }
}

extension DefaultModelTests {
    /// README's quick start quotes what its first command prints; the bundled model must print exactly that.
    @Test func quickStartPrintsWhatREADMESays() throws {
        let readme = try String(contentsOf: Self.repository.appendingPathComponent("README.md"), encoding: .utf8)
        let command = try #require(readme.firstMatch(of: /swift run -c release t5 generate "([^"]+)"/), "README's quick start command")
        let printed = try #require(readme.firstMatch(of: /which prints `([^`]+)`/), "README's quoted output")
        let r = try CLITests().run(["generate", "--model", Self.repository.appendingPathComponent("models/default").path, String(command.1)])
        #expect(r.status == 0 && r.stdout == String(printed.1) + "\n", "\(r)")
    }
}
