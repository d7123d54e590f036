import Foundation

/// The model card a Hugging Face directory may carry (`README.md`: optional YAML front matter between `---`
/// lines, then Markdown). `t5 info` prints its first paragraph, so that a directory can say what its model is
/// for; the bundled model's card says which prefixes it answers and that it knows nothing else.
public struct ModelCard: Sendable, Equatable {
    /// The first paragraph of prose: after the front matter, skipping headings, blank lines and HTML
    /// comments, up to the next blank line, with its lines joined by single spaces.
    public let summary: String

    /// Cards are read only this far: the summary is near the top, and a huge README must not cost memory.
    static let readLimit = 64 << 10

    /// The card of `directory`, or nil when it has no README.md, it is not UTF-8, or it holds no prose.
    public init?(directory: URL) {
        guard let handle = FileHandle(forReadingAtPath: directory.appendingPathComponent("README.md").path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: Self.readLimit) else { return nil }
        // A card longer than the limit is cut there, possibly inside a character: drop up to 3 bytes of it.
        let cut = data.count == Self.readLimit ? 3 : 0
        guard let text = (0...cut).lazy.compactMap({ String(data: data.dropLast($0), encoding: .utf8) }).first else { return nil }
        self.init(markdown: text)
    }

    public init?(markdown text: String) {
        // Any line break ends a line: "\r\n" is one Character in Swift, so splitting on "\n" alone would keep a
        // CRLF file (as Windows editors save it) in one line (found by the model-card fuzzer).
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        if lines.first == "---", let end = lines.dropFirst().firstIndex(of: "---") {
            lines.removeSubrange(0...end)
        }
        var paragraph = [String]()
        for line in lines {
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("<!--") {
                if !paragraph.isEmpty { break }
                continue
            }
            paragraph.append(line)
        }
        guard !paragraph.isEmpty else { return nil }
        summary = paragraph.joined(separator: " ")
    }
}
