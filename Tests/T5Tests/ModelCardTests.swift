import Foundation
import Testing
@testable import T5

@Suite struct ModelCardTests {
    @Test func summaryIsTheFirstParagraphAfterFrontMatterAndHeadings() {
        let card = ModelCard(markdown: """
            ---
            language: [en, es]
            tags:
            - translation
            ---
            <!-- written by a tool -->
            # A model

            Translates English
              to Spanish.

            Second paragraph.
            """)
        #expect(card?.summary == "Translates English to Spanish.")
        #expect(ModelCard(markdown: "---\nonly: front matter\n---\n\n# Title\n") == nil)
        // CRLF files split into the same lines as LF ones.
        #expect(ModelCard(markdown: "---\r\nlanguage: en\r\n---\r\n# T\r\n\r\nOne\r\ntwo.\r\n\r\nThree.\r\n")?.summary == "One two.")
        #expect(ModelCard(markdown: "--\r\n)")?.summary == "-- )")
        // An unclosed front matter is prose, as Hugging Face renders it.
        #expect(ModelCard(markdown: "---\nnot closed\n")?.summary == "--- not closed")
    }

    @Test func infoPrintsTheCardOfADirectoryThatHasOne() throws {
        let cli = CLITests()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("card-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Fixtures.modelDirectory("t5-relu-tied"), to: dir)
        defer { try? FileManager.default.removeItem(at: dir) }
        let without = try cli.run(["info", "--model", dir.path])
        #expect(without.status == 0 && !without.stdout.contains("about:"), "\(without)")
        try Data("# Card\n\nA fixture that knows nothing.\n".utf8).write(to: dir.appendingPathComponent("README.md"))
        let with = try cli.run(["info", "--model", dir.path])
        #expect(with.stdout.split(separator: "\n").dropFirst().first == "about:        A fixture that knows nothing.", "\(with)")
        // A card past the 64 KiB read limit, cut inside a two-byte character, still gives its summary.
        // A 23-byte head, so that the 64 KiB cut falls inside an é.
        let long = "# Cards\n\nA long card.\n\n" + String(repeating: "é", count: ModelCard.readLimit)
        try Data(long.utf8).write(to: dir.appendingPathComponent("README.md"))
        #expect(ModelCard(directory: dir)?.summary == "A long card.")
    }
}
