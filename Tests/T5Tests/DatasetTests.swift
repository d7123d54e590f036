import Foundation
import Testing
@testable import T5

/// A new empty directory under the temporary directory (tests remove it when done).
func scratchDirectory(_ label: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("t5-\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct DatasetTests {
    func parse(_ text: String, path: String = "data.jsonl", format: DataFormat? = nil) throws(T5Error) -> DataFile {
        try DataFile(data: Data(text.utf8), path: path, format: format)
    }

    func expectError(_ text: String, path: String = "data.jsonl", _ expected: T5Error, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: expected, sourceLocation: sourceLocation) { try parse(text, path: path) }
    }

    @Test func jsonLinesWithEmptyLinesCRLFAndBOM() throws {
        let text = "\u{FEFF}{\"input\": \"a b\", \"target\": \"c\", \"id\": 7}\r\n\r\n   \n{\"target\": \"é\\t\", \"input\": \"x\"}\n\n"
        let file = try parse(text)
        #expect(file.format == .jsonLines)
        #expect(file.examples == [TextExample(input: "a b", target: "c", line: 1), TextExample(input: "x", target: "é\t", line: 4)])
        #expect(file.emptyLines == 3)
    }

    @Test func tsv() throws {
        let file = try parse("one two\tthree\n\nfour\t\n", path: "d.tsv")
        #expect(file.format == .tsv)
        #expect(file.examples == [TextExample(input: "one two", target: "three", line: 1), TextExample(input: "four", target: "", line: 3)])
        #expect(file.emptyLines == 1)
        // Without a telling extension the content decides.
        #expect(try parse("{\"input\": \"a\", \"target\": \"b\"}\n", path: "d.txt").format == .jsonLines)
        #expect(try parse("a\tb\n", path: "d.txt").format == .tsv)
    }

    @Test func badLinesNameFileAndLine() {
        expectError("{\"input\": \"a\", \"target\": \"b\"}\n{\"input\": \"a\", \"target\": \"b\"\n", .invalidData(
            path: "data.jsonl", line: 2, reason: "malformed JSON: unexpected end of input inside an object at byte 28"))
        expectError("{\"input\": \"a\"}\n", .invalidData(path: "data.jsonl", line: 1, reason: "missing field \"target\""))
        expectError("\n{\"input\": 3, \"target\": \"b\"}\n", .invalidData(path: "data.jsonl", line: 2, reason: "field \"input\" must be a string, found an integer"))
        expectError("[\"a\", \"b\"]\n", .invalidData(path: "data.jsonl", line: 1, reason: "expected a JSON object with \"input\" and \"target\", found an array"))
        expectError("a\tb\nc\td\te\n", path: "x.tsv", .invalidData(path: "x.tsv", line: 2, reason: "expected 2 tab-separated columns (input<TAB>target), found 3"))
        expectError("just one column\n", path: "x.tsv", .invalidData(path: "x.tsv", line: 1, reason: "expected 2 tab-separated columns (input<TAB>target), found 1"))
        expectError("", .invalidData(path: "data.jsonl", line: 1, reason: "the file is empty"))
        expectError("\n\n", .invalidData(path: "data.jsonl", line: 2, reason: "no examples, only 2 empty lines"))
        #expect(throws: T5Error.invalidData(path: "bad.tsv", line: 2, reason: "not valid UTF-8 text")) {
            try DataFile(data: Data("a\tb\n".utf8) + Data([0x61, 0x09, 0xFF, 0x0A]), path: "bad.tsv")
        }
        #expect(throws: T5Error.missingFile(path: "/nonexistent/train.jsonl")) { try DataFile(path: "/nonexistent/train.jsonl") }
    }

    @Test func malformedJSONMessageIsOneLine() throws {
        do {
            _ = try parse("{\"input\": \"a\", \"target\": }\n")
            Issue.record("expected an error")
        } catch {
            let message = String(describing: error)
            #expect(message.hasPrefix("data.jsonl:1: malformed JSON"))
            #expect(!message.contains("\n"))
        }
    }

    @Test func taskSourceArguments() throws {
        #expect(TaskSource.parse("summarize: =/data/sum.jsonl") == TaskSource(prefix: "summarize: ", path: "/data/sum.jsonl"))
        #expect(TaskSource.parse("/data/plain.jsonl") == TaskSource(path: "/data/plain.jsonl"))
        #expect(TaskSource.parse("translate English to German: =de.tsv").name == "translate English to German")
        // An existing file whose name contains '=' is a file, not a prefix.
        let dir = try scratchDirectory("source")
        defer { try? FileManager.default.removeItem(at: dir) }
        let odd = dir.appendingPathComponent("a=b.tsv")
        try Data("x\ty\n".utf8).write(to: odd)
        #expect(TaskSource.parse(odd.path) == TaskSource(path: odd.path))
    }

    @Test func prefixesAndTruncation() throws {
        let tokenizer = try T5Tokenizer(modelFile: Fixtures.root.appendingPathComponent("spm/spiece.model"))
        let dir = try scratchDirectory("task")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("t.tsv")
        try Data("1 2 3 4 5 6 7 8\t9 8 7\n1\t2\n".utf8).write(to: file)
        let task = try TaskData(source: TaskSource(prefix: "reverse: ", path: file.path), tokenizer: tokenizer, maxInputTokens: 10, maxTargetTokens: 3)
        let full = tokenizer.encode("reverse: 1 2 3 4 5 6 7 8")
        #expect(full.count > 10)
        #expect(task.examples[0].inputIDs == Array(full.prefix(9)) + [T5Tokenizer.eosID])
        #expect(task.examples[0].targetIDs == Array(tokenizer.encode("9 8 7").prefix(2)) + [T5Tokenizer.eosID])
        #expect(task.examples[1].inputIDs == tokenizer.encode("reverse: 1"))
        #expect(task.truncatedInputs == TruncationReport(examples: 1, tokens: full.count - 10))
        #expect(task.truncatedTargets == TruncationReport(examples: 1, tokens: 1))
    }

    @Test func mixtureRates() throws {
        func task(_ n: Int) -> TaskData {
            TaskData(source: TaskSource(path: "t\(n)"), examples: (0..<n).map { TokenizedExample(inputIDs: [$0 + 3, 1], targetIDs: [1]) })
        }
        let proportional = try TrainingData(tasks: [task(30), task(10)])
        #expect(proportional.rates == [0.75, 0.25])
        #expect(try TrainingData(tasks: [task(30), task(10)], weights: [1, 1]).rates == [0.5, 0.5])
        #expect(throws: T5Error.invalidOption(name: "TrainingData.weights", reason: "1 weight for 2 tasks (one per task, in order)")) {
            try TrainingData(tasks: [task(3), task(1)], weights: [1])
        }
        #expect(throws: T5Error.self) { try TrainingData(tasks: [task(3), task(1)], weights: [0, 0]) }
        #expect(throws: T5Error.self) { try TrainingData(tasks: [task(3), task(1)], weights: [-1, 2]) }
    }
}

@Suite struct BatchingTests {
    /// A task whose example i has input length 2 + i % 7 and target length 1 + i % 3; ids encode (task, i).
    func task(_ t: Int, _ n: Int) -> TaskData {
        TaskData(source: TaskSource(prefix: "t\(t): ", path: "t\(t).jsonl"), examples: (0..<n).map { i in
            TokenizedExample(inputIDs: [1000 * t + i] + Array(repeating: 5, count: i % 7) + [1], targetIDs: Array(repeating: 7, count: i % 3) + [1])
        })
    }

    func ids(_ batch: TrainingBatch) -> [Int] { batch.inputIDs.map { $0[0] } }

    @Test func onePassCoversEveryExampleOnce() throws {
        let data = try TrainingData(tasks: [task(0, 40)])
        var sampler = BatchSampler(data: data, batchSize: 4, seed: 7)
        var seen = [Int]()
        for _ in 0..<10 { seen += ids(try sampler.next()) }
        #expect(seen.sorted() == Array(0..<40))
        // The next pass is in another order.
        var next = [Int]()
        for _ in 0..<10 { next += ids(try sampler.next()) }
        #expect(next.sorted() == Array(0..<40))
        #expect(next != seen)
    }

    @Test func deterministicPerSeed() throws {
        let data = try TrainingData(tasks: [task(0, 50), task(1, 20)])
        var a = BatchSampler(data: data, batchSize: 5, seed: 1), b = BatchSampler(data: data, batchSize: 5, seed: 1)
        var c = BatchSampler(data: data, batchSize: 5, seed: 2)
        var sa = [[Int]](), sb = [[Int]](), sc = [[Int]]()
        for _ in 0..<30 { sa.append(ids(try a.next())); sb.append(ids(try b.next())); sc.append(ids(try c.next())) }
        #expect(sa == sb)
        #expect(sa != sc)
    }

    /// A sampler rebuilt from a saved position deals exactly the batches the original would have.
    @Test func resumesFromAnyPosition() throws {
        let data = try TrainingData(tasks: [task(0, 37), task(1, 23)], weights: [2, 1])
        var original = BatchSampler(data: data, batchSize: 3, seed: 11, poolBatches: 4)
        for cut in [0, 1, 3, 4, 5, 17] {
            var reference = BatchSampler(data: data, batchSize: 3, seed: 11, poolBatches: 4)
            for _ in 0..<cut { _ = try reference.next() }
            var resumed = BatchSampler(data: data, batchSize: 3, seed: 11, poolBatches: 4, position: reference.position)
            for _ in 0..<15 { #expect(ids(try resumed.next()) == ids(try reference.next()), "cut \(cut)") }
        }
        _ = try original.next()
        #expect(original.position.batchInPool == 1)
    }

    @Test func mixtureFollowsTheRates() throws {
        let data = try TrainingData(tasks: [task(0, 100), task(1, 100), task(2, 100)], weights: [3, 1, 0])
        var sampler = BatchSampler(data: data, batchSize: 10, seed: 3)
        var counts = [0, 0, 0]
        for _ in 0..<400 { for id in ids(try sampler.next()) { counts[id / 1000] += 1 } }
        let share = Double(counts[0]) / 4000
        #expect(abs(share - 0.75) < 0.03, "task 0 share \(share)")
        #expect(counts[2] == 0)
    }

    /// Length bucketing: far less padding than batches of random examples.
    @Test func batchesHaveSimilarLengths() throws {
        let data = try TrainingData(tasks: [task(0, 700)])
        var sampler = BatchSampler(data: data, batchSize: 8, seed: 5)
        var padding = 0
        for _ in 0..<50 {
            let batch = try sampler.next()
            let longest = batch.inputIDs.map(\.count).max() ?? 0
            padding += batch.inputIDs.reduce(0) { $0 + longest - $1.count }
        }
        var generator = SeededGenerator(seed: 9)
        var randomPadding = 0
        for _ in 0..<50 {
            let lengths = (0..<8).map { _ in data.tasks[0].examples[generator.uniformIndex(below: 700)].inputIDs.count }
            randomPadding += lengths.reduce(0) { $0 + (lengths.max() ?? 0) - $1 }
        }
        #expect(padding * 4 < randomPadding, "bucketed padding \(padding), random \(randomPadding)")
    }

    @Test func evaluationBatchesCoverEverythingOnce() throws {
        let data = try TrainingData(tasks: [task(0, 13), task(1, 6)])
        let batches = EvaluationBatches.make(data, batchSize: 4)
        #expect(batches.count == 5)
        let all = batches.joined().map { "\($0.task):\($0.index)" }
        #expect(Set(all).count == 19 && all.count == 19)
    }

    @Test func stepsFromEpochs() {
        var o = TrainingOptions()
        o.batchSize = 8
        o.gradientAccumulation = 2
        o.length = .epochs(3)
        #expect(o.totalSteps(examples: 100) == 19)  // ⌈300 / 16⌉
        o.length = .steps(7)
        #expect(o.totalSteps(examples: 100) == 7)
    }
}
