import Foundation
import Testing
@testable import T5

/// One input rule for generate, score, tokenize and embed: each TEXT argument is an input; without TEXT,
/// lines of --input-file or stdin (plain or JSON Lines, other fields copied to --json output), answered as
/// they arrive. Checked through the real binary.
@Suite struct InputRuleTests {
    let cli = CLITests()
    static let model = Fixtures.modelDirectory("t5-relu-tied").path

    func file(_ name: String, _ text: String) throws -> URL {
        let dir = try scratchDirectory("inputs")
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }

    @Test func everyTextArgumentIsOneInput() throws {
        let both = try cli.run(["generate", "--model", Self.model, "--max-new-tokens", "4", "--json", "first input", "second input"])
        #expect(both.status == 0, "\(both.stderr)")
        let records = try cli.jsonLines(both.stdout)
        #expect(records.map { $0["input"] as? String } == ["first input", "second input"])
        let alone = try cli.run(["generate", "--model", Self.model, "--max-new-tokens", "4", "--json", "second input"])
        let ids = { (r: [String: Any]) in ((r["outputs"] as? [[String: Any]])?.first?["ids"] as? [Int]) }
        #expect(ids(records[1]) == ids(try #require(try cli.jsonLines(alone.stdout).first)))
        let tokens = try cli.run(["tokenize", "--model", Self.model, "--json", "a", "b c"])
        #expect(try cli.jsonLines(tokens.stdout).map { $0["text"] as? String } == ["a", "b c"])
        let vectors = try cli.run(["embed", "--model", Self.model, "--json", "a", "b c"])
        #expect(try cli.jsonLines(vectors.stdout).count == 2, "\(vectors.stderr)")
    }

    @Test func jsonLinesInputsKeepTheirOtherFields() throws {
        let inputs = try file("in.jsonl", "{\"id\": 7, \"input\": \"first input\"}\n{\"input\": \"second\", \"meta\": {\"k\": [1, 2]}}\n")
        defer { try? FileManager.default.removeItem(at: inputs.deletingLastPathComponent()) }
        let r = try cli.run(["generate", "--model", Self.model, "--max-new-tokens", "3", "--json", "--input-file", inputs.path])
        #expect(r.status == 0, "\(r.stderr)")
        let records = try cli.jsonLines(r.stdout)
        #expect(records.count == 2)
        #expect(records.first?["id"] as? Int == 7)
        #expect(records.first?["input"] as? String == "first input")
        #expect((records.last?["meta"] as? [String: Any])?["k"] as? [Int] == [1, 2])
        // The same from stdin with --jsonl.
        let piped = try cli.run(["tokenize", "--model", Self.model, "--json", "--jsonl"], stdin: "{\"input\": \"a b\", \"id\": \"x\"}\n")
        #expect(try cli.jsonLines(piped.stdout).first?["id"] as? String == "x", "\(piped.stderr)")
        // A line without "input" is refused with its file and line.
        let bad = try file("bad.jsonl", "{\"input\": \"ok\"}\n{\"text\": \"no input\"}\n")
        try cli.expectFailure(["generate", "--model", Self.model, "--input-file", bad.path], "\(bad.path):2: missing field \"input\"")
    }

    @Test func scorePairsFromJSONLinesMatchSinglePairs() throws {
        let pairs = try file("pairs.jsonl", "{\"input\": \"translate: a b\", \"target\": \"b a\", \"id\": 1}\n{\"input\": \"x\", \"target\": \"y z\"}\n")
        defer { try? FileManager.default.removeItem(at: pairs.deletingLastPathComponent()) }
        let batch = try cli.run(["score", "--model", Self.model, "--json", "--input-file", pairs.path])
        #expect(batch.status == 0, "\(batch.stderr)")
        let records = try cli.jsonLines(batch.stdout)
        #expect(records.count == 2)
        #expect(records.first?["id"] as? Int == 1)
        for (record, (input, target)) in zip(records, [("translate: a b", "b a"), ("x", "y z")]) {
            let single = try cli.run(["score", "--model", Self.model, "--json", "--input", input, "--target", target])
            let one = try #require(try cli.jsonLines(single.stdout).first)
            #expect(record["total"] as? Double == one["total"] as? Double)
            #expect(record["target"] as? String == target)
        }
        let text = try cli.run(["score", "--model", Self.model, "--input-file", pairs.path])
        #expect(text.stdout.split(separator: "\n").count == 2)
        let noTarget = try file("nt.jsonl", "{\"input\": \"a\"}\n")
        try cli.expectFailure(["score", "--model", Self.model, "--input-file", noTarget.path], "\(noTarget.path):1: missing field \"target\"")
        try cli.expectFailure(["score", "--model", Self.model, "--input", "a"], "give --input and --target together")
    }

    /// stdin is answered line by line: the answer to the first line arrives while stdin is still open.
    @Test func stdinIsAnsweredAsItArrives() throws {
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = ["generate", "--model", Self.model, "--max-new-tokens", "3"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        input.fileHandleForWriting.write(Data("first line\n".utf8))
        let answered = DispatchSemaphore(value: 0)
        let received = LockedData()
        output.fileHandleForReading.readabilityHandler = { handle in
            received.append(handle.availableData)
            if received.contains(UInt8(ascii: "\n")) { answered.signal() }
        }
        let result = answered.wait(timeout: .now() + 30)
        output.fileHandleForReading.readabilityHandler = nil
        #expect(result == .success, "no answer to the first line while stdin was open")
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    /// A model that cannot be loaded is reported before stdin is read (nothing is waited for).
    @Test func modelErrorsComeBeforeReadingInput() throws {
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = ["generate", "--model", "/nonexistent/model"]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(!process.isRunning, "waited for stdin before loading the model")
        if process.isRunning { process.terminate() } else { #expect(process.terminationStatus != 0) }
        try? input.fileHandleForWriting.close()
    }

    @Test func truncateCutsWhereMaxInputTokensRefuses() throws {
        let long = "one two three four five six seven eight"
        try cli.expectFailure(["generate", "--model", Self.model, "--max-input-tokens", "4", long], "more than --max-input-tokens 4")
        let cut = try cli.run(["generate", "--model", Self.model, "--max-input-tokens", "4", "--truncate", "4", "--max-new-tokens", "3", "--json", long])
        #expect(cut.status == 0, "\(cut.stderr)")
        // The library: the first 3 ids and </s>, as transformers' truncation=True, max_length=4.
        let model = try Fixtures.model("t5-relu-tied")
        let full = model.tokenizer.encode(long)
        #expect(try model.inputIDs(long, truncateTo: 4) == Array(full.prefix(3)) + [1])
        var options = GenerationOptions()
        options.maxNewTokens = 3
        options.truncateInputsTo = 4
        let viaCut = try model.generate(long, options: options)[0].ids
        options.truncateInputsTo = nil
        #expect(viaCut == (try model.generate(ids: [Array(full.prefix(3)) + [1]], options: options))[0][0].ids)
        let outputs = try #require(try cli.jsonLines(cut.stdout).first?["outputs"] as? [[String: Any]])
        #expect(outputs.first?["ids"] as? [Int] == viaCut)
    }

    /// Per-token scores are the teacher-forced log-probabilities of the generated ids (computed by the
    /// separate scoring path), and sum to the sequence score.
    @Test func outputScoresAreTheTeacherForcedLogprobs() throws {
        let r = try cli.run(["generate", "--model", Self.model, "--max-new-tokens", "6", "--json", "--output-scores", "translate: a b c"])
        #expect(r.status == 0, "\(r.stderr)")
        let output = try #require((try cli.jsonLines(r.stdout).first?["outputs"] as? [[String: Any]])?.first)
        let ids = try #require(output["ids"] as? [Int])
        let perToken = try #require(output["token_logprobs"] as? [Double])
        let model = try Fixtures.model("t5-relu-tied")
        let forced = try model.score(inputIDs: model.tokenizer.encode("translate: a b c"), targetIDs: ids).logprobs
        #expect(perToken.count == ids.count)
        #expect(zip(perToken, forced).allSatisfy { abs($0 - Double($1)) < 1e-4 }, "\(perToken) vs \(forced)")
        #expect(abs(perToken.reduce(0, +) - (output["score"] as? Double ?? .nan)) < 1e-4)
        let plain = try cli.run(["generate", "--model", Self.model, "--max-new-tokens", "6", "--json", "translate: a b c"])
        #expect(!plain.stdout.contains("token_logprobs"))
        try cli.expectFailure(["generate", "--model", Self.model, "--output-scores", "x"], "--output-scores needs --json")
        try cli.expectFailure(["generate", "--model", Self.model, "--json", "--beams", "2", "--output-scores", "x"], "greedy search and sampling")
    }

    @Test func severalOutputsAreGroupedUnderTheirInput() throws {
        let r = try cli.run(["generate", "--model", Self.model, "--beams", "3", "--num-return-sequences", "2", "--max-new-tokens", "4", "in one", "in two"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        #expect(lines.count == 6)
        #expect(lines[0] == "in one" && lines[3] == "in two")
        #expect([lines[1], lines[2], lines[4], lines[5]].allSatisfy { $0.hasPrefix("  ") })
    }
}

/// Bytes appended from a reading thread and checked from the test's.
final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ more: Data) { lock.lock(); data.append(more); lock.unlock() }
    func contains(_ byte: UInt8) -> Bool { lock.lock(); defer { lock.unlock() }; return data.contains(byte) }
}
