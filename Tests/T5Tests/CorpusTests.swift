import Foundation
import Testing
@testable import T5

/// Streamed corpora: the documents of every format (Tests/Fixtures/pretrain/corpus, with the documents
/// tools/make_pretrain_fixtures.py expects), broken files refused in one line, and chunk streams that resume
/// exactly from a saved position.
@Suite struct CorpusTests {
    struct Expected: Decodable {
        struct BadUTF8: Decodable {
            let file: String
            let line: Int
            let byte_offset: Int
        }
        let docs: [String]
        let one_per_line: [String]
        let bad_utf8: BadUTF8
    }

    static func expected() throws -> Expected {
        struct File: Decodable { let corpus: Expected }
        let data = try Data(contentsOf: Fixtures.root.appendingPathComponent("pretrain/span-corruption.json"))
        return try JSONDecoder().decode(File.self, from: data).corpus
    }

    static func path(_ name: String) -> String { Fixtures.root.appendingPathComponent("pretrain/corpus/\(name)").path }

    static func documents(_ name: String, onePerLine: Bool = false) throws(T5Error) -> [String] {
        let reader = try CorpusReader(path: path(name), format: CorpusFormat.of(name, onePerLine: onePerLine))
        var out = [String]()
        while let d = try reader.next() { out.append(d.text) }
        return out
    }

    static func tokenizer() throws -> T5Tokenizer {
        try T5Tokenizer(modelFile: Fixtures.root.appendingPathComponent("spm/spiece.model"))
    }

    @Test func everyFormatGivesTheSameDocuments() throws {
        let expected = try Self.expected()
        for name in ["docs.txt", "docs.txt.gz", "docs.jsonl", "docs.jsonl.gz", "two-members.txt.gz"] {
            #expect(try Self.documents(name) == expected.docs, "\(name)")
        }
        #expect(try Self.documents("docs.txt", onePerLine: true) == expected.one_per_line)
        #expect(try Self.documents("docs.txt.gz", onePerLine: true) == expected.one_per_line)
    }

    @Test func brokenFilesAreRefusedNamingWhere() throws {
        let expected = try Self.expected()
        func failure(_ name: String) -> String {
            do { _ = try Self.documents(name) } catch { return error.description }
            return "accepted"
        }
        #expect(failure("bad-utf8.txt") == "\(Self.path("bad-utf8.txt")):\(expected.bad_utf8.line): not valid UTF-8 text (byte offset \(expected.bad_utf8.byte_offset))")
        #expect(failure("truncated.txt.gz").contains("truncated.txt.gz: cannot read: corrupt gzip data"))
        #expect(failure("truncated.txt.gz").contains("truncated"))
        #expect(failure("corrupt.txt.gz").contains("corrupt.txt.gz: cannot read: corrupt gzip data at compressed byte"))
        for message in [failure("truncated.txt.gz"), failure("corrupt.txt.gz"), failure("bad-utf8.txt")] {
            #expect(!message.contains("\n"))
        }
        let tokenizer = try Self.tokenizer()
        #expect(throws: T5Error.self) { _ = try CorpusChunks.scan(files: [Self.path("empty.txt")], onePerLine: false, length: 8, tokenizer: tokenizer) }
        do {
            _ = try CorpusChunks.scan(files: [Self.path("docs.txt")], onePerLine: false, length: 100_000, tokenizer: tokenizer)
            Issue.record("a corpus shorter than one chunk was accepted")
        } catch {
            #expect(error.description.contains("fewer than one chunk of 100000"))
        }
    }

    /// A corpus of a few hundred short documents over two files, one compressed.
    func corpus() throws -> [String] {
        let dir = try scratchDirectory("corpus")
        var generator = SeededGenerator(seed: 21)
        let words = ["alpha", "beta", "gamma", "delta", "one", "two", "three", "x", "y", "z"]
        var a = "", b = ""
        for i in 0..<160 {
            let doc = (0..<(1 + generator.uniformIndex(below: 40))).map { _ in words[generator.uniformIndex(below: words.count)] }.joined(separator: " ")
            if i < 90 { a += doc + "\n\n" } else { b += "{\"text\": \"\(doc)\"}\n" }
        }
        let first = dir.appendingPathComponent("a.txt"), second = dir.appendingPathComponent("b.jsonl")
        try Data(a.utf8).write(to: first)
        try Data(b.utf8).write(to: second)
        // A compressed file last, so that positions inside it (resumed by inflating up to the offset) are tested.
        let third = dir.appendingPathComponent("c.jsonl.gz")
        try FileManager.default.copyItem(atPath: Self.path("docs.jsonl.gz"), toPath: third.path)
        return [first.path, second.path, third.path]
    }

    @Test func chunksConcatenateDocumentsAndResumeFromAnyPosition() throws {
        let files = try corpus()
        let tokenizer = try Self.tokenizer()
        let summary = try CorpusChunks.scan(files: files, onePerLine: false, length: 17, tokenizer: tokenizer)
        // The whole stream: every document's ids with </s>, in file order.
        var all = [Int]()
        for file in files {
            let reader = try CorpusReader(path: file, format: CorpusFormat.of(file, onePerLine: false))
            while let d = try reader.next() { all += tokenizer.encode(d.text) }
        }
        #expect(summary.tokens == all.count && summary.chunks == all.count / 17)
        let stream = CorpusChunks(files: files, onePerLine: false, length: 17, tokenizer: tokenizer)
        var chunks = [[Int]](), positions = [CorpusPosition]()
        for _ in 0..<(summary.chunks * 2 + 3) {
            positions.append(stream.position)
            chunks.append(try stream.next())
        }
        // One pass is the concatenation cut in 17s, the remainder dropped; the next pass starts over.
        #expect(Array(chunks[0..<summary.chunks].joined()) == Array(all.prefix(summary.chunks * 17)))
        #expect(Array(chunks[summary.chunks..<(2 * summary.chunks)]) == Array(chunks[0..<summary.chunks]))
        #expect(positions[summary.chunks + 1].pass == 1)
        // A fresh stream sent to any saved position continues exactly.
        // Positions in the compressed file past its start, and every other kind.
        let inGzip = positions.indices.filter { positions[$0].file == 2 && positions[$0].offset > 0 && $0 < summary.chunks }
        #expect(!inGzip.isEmpty)
        for k in [1, 5, summary.chunks - 1, summary.chunks, summary.chunks + 2, 2 * summary.chunks + 1] + inGzip.prefix(3) {
            let resumed = CorpusChunks(files: files, onePerLine: false, length: 17, tokenizer: tokenizer)
            try resumed.seek(to: positions[k])
            #expect(try resumed.next() == chunks[k], "position \(k)")
            #expect(try resumed.next() == chunks[k + 1], "after position \(k)")
            let counted = CorpusChunks(files: files, onePerLine: false, length: 17, tokenizer: tokenizer)
            try counted.seek(toChunk: k)
            #expect(try counted.next() == chunks[k], "chunk \(k) by counting")
        }
    }

    @Test func aSamplerOverACorpusResumesExactlyAcrossPools() throws {
        let files = try corpus()
        let tokenizer = try Self.tokenizer()
        let corruption = try SpanCorruption(inputLength: 16, sentinelCount: tokenizer.sentinelCount)
        let corpus = try SpanCorruptionCorpus(files: files, corruption: corruption, tokenizer: tokenizer)
        let data = try TrainingData(tasks: [TaskData(corpus: corpus)])
        var reference = BatchSampler(data: data, batchSize: 3, seed: 8, poolBatches: 4)
        var batches = [TrainingBatch](), positions = [DataPosition]()
        for _ in 0..<30 {
            positions.append(reference.position)
            batches.append(try reference.next())
        }
        #expect(positions.contains { $0.corpus != nil && $0.pool > 1 })
        for cut in [0, 3, 4, 9, 17, 29] {
            var resumed = BatchSampler(data: data, batchSize: 3, seed: 8, poolBatches: 4, position: positions[cut])
            for k in cut..<min(cut + 6, 30) {
                let b = try resumed.next()
                #expect(b.inputIDs == batches[k].inputIDs && b.targetIDs == batches[k].targetIDs && b.sourceIDs == batches[k].sourceIDs, "cut \(cut), batch \(k)")
            }
        }
        // Every example is its chunk corrupted with that chunk's mask.
        for batch in batches.prefix(5) {
            for i in batch.inputIDs.indices {
                #expect(SpanCorruptionTests.interleave(input: batch.inputIDs[i], target: batch.targetIDs[i], tokenizer: tokenizer) == batch.sourceIDs[i])
                #expect(batch.inputIDs[i].count == 16)
            }
        }
    }
}
