import Foundation
import Testing

/// README.md's Swift code blocks are the files of the Examples package, which `.ci/run` compiles (and runs
/// where it can): each block is preceded by `<!-- Examples/Sources/NAME/main.swift -->` and must equal that
/// file, so that neither can change without the other.
@Suite struct ReadmeExamplesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// (marker path or nil, block text) for every ```swift block.
    static func blocks() throws -> [(path: String?, text: String)] {
        let lines = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var blocks: [(String?, String)] = []
        var index = 0
        while index < lines.count {
            guard lines[index] == "```swift" else { index += 1; continue }
            var marker: String?
            if index > 0, lines[index - 1].hasPrefix("<!-- "), lines[index - 1].hasSuffix(" -->") {
                marker = String(lines[index - 1].dropFirst(5).dropLast(4))
            }
            var end = index + 1
            while end < lines.count, lines[end] != "```" { end += 1 }
            blocks.append((marker, lines[(index + 1)..<end].map { $0 + "\n" }.joined()))
            index = end + 1
        }
        return blocks
    }

    @Test func everySwiftBlockIsAnExampleFile() throws {
        let blocks = try Self.blocks()
        #expect(blocks.count >= 3)
        for (path, text) in blocks {
            let path = try #require(path, "a ```swift block without an <!-- Examples/Sources/.../main.swift --> line above it:\n\(text)")
            let file = try String(contentsOf: Self.root.appendingPathComponent(path), encoding: .utf8)
            #expect(file == text, "README's block differs from \(path)")
        }
    }

    @Test func everyExampleFileIsInTheReadme() throws {
        let shown = Set(try Self.blocks().compactMap(\.path))
        let sources = Self.root.appendingPathComponent("Examples/Sources")
        for name in try FileManager.default.contentsOfDirectory(atPath: sources.path) {
            #expect(shown.contains("Examples/Sources/\(name)/main.swift"), "Examples/Sources/\(name) is not shown in README.md")
        }
    }
}
