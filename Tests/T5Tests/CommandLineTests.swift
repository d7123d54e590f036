import Foundation
import Testing
@testable import T5

/// What a newcomer meets first at the command line: --version, a mistyped command, a negative value, and
/// the exit statuses of signals.
@Suite struct CommandLineTests {
    let cli = CLITests()

    @Test func versionAndMistypedCommands() throws {
        let version = try cli.run(["--version"])
        #expect(version.status == 0)
        #expect(version.stdout == T5Runtime.version + "\n")
        let typo = try cli.run(["genrate", "hello"])
        #expect(typo.status == 64)
        #expect(typo.stderr == "t5: unknown command 'genrate'; did you mean 'generate'?\n")
        let unknown = try cli.run(["xyzzy"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.hasPrefix("t5: unknown command 'xyzzy' (commands: generate, score, tokenize"), "\(unknown.stderr)")
    }

    @Test func negativeValuesAreInvalidValuesNotMissingOnes() throws {
        try cli.expectFailure(["generate", "--max-new-tokens", "-1", "x"], "invalid value for --max-new-tokens: must be at least 1, got -1")
        try cli.expectFailure(["generate", "--sample", "--temperature", "-0.5", "x"], "invalid value for --temperature: must be a positive number, got -0.5")
        // A negative number that is an input, after --, stays an input.
        let r = try cli.run(["generate", "--max-new-tokens", "2", "--json", "--", "-1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try cli.jsonLines(r.stdout).first?["input"] as? String == "-1")
    }

    /// A command waiting on stdin ends with 128 + the signal: 143 for SIGTERM, 130 for SIGINT.
    @Test(arguments: [(SIGTERM, Int32(143)), (SIGINT, Int32(130))])
    func signalsExitWithTheShellsStatus(signal: Int32, status: Int32) throws {
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = ["generate", "--model", Fixtures.modelDirectory("t5-relu-tied").path, "--max-new-tokens", "2"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Once the first line is answered the handlers are installed and the command waits for more.
        input.fileHandleForWriting.write(Data("first\n".utf8))
        let answered = DispatchSemaphore(value: 0)
        output.fileHandleForReading.readabilityHandler = { handle in
            if handle.availableData.contains(UInt8(ascii: "\n")) { answered.signal() }
        }
        #expect(answered.wait(timeout: .now() + 30) == .success)
        output.fileHandleForReading.readabilityHandler = nil
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == status)
        try? input.fileHandleForWriting.close()
    }

    /// --threads and --quiet: the same flag, default and help on every command that computes.
    @Test func threadsAndQuietAreTheSameEverywhere() throws {
        for command in ["generate", "score", "embed", "convert", "bench", "finetune"] {
            // The help as one line (argument-parser wraps it).
            let help = try cli.run([command, "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(help.contains("--threads <threads> Threads for the matrix products and parallel loops (default: all cores)."), "\(command): \(help)")
            #expect(help.contains("--quiet Print nothing on stderr but errors: no progress, notes or warnings."), "\(command): \(help)")
        }
        let model = Fixtures.modelDirectory("t5-relu-tied").path
        try cli.expectFailure(["generate", "--model", model, "--threads", "0", "x"], "--threads must be at least 1, got 0")
        // A warning is printed, unless --quiet.
        let dir = try cli.scratchModel()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(#"{"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0, "bad_words_ids": [[5]], "max_new_tokens": 2}"#.utf8)
            .write(to: dir.appendingPathComponent("generation_config.json"))
        let loud = try cli.run(["generate", "--model", dir.path, "--threads", "1", "hello"])
        #expect(loud.status == 0 && loud.stderr.contains("warning: generation_config.json sets bad_words_ids"), "\(loud.stderr)")
        let quiet = try cli.run(["generate", "--model", dir.path, "--quiet", "hello"])
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet.stderr)")
        #expect(quiet.stdout == loud.stdout)
    }
}
