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
        #expect(T5Runtime.version.wholeMatch(of: /[0-9]+\.[0-9]+\.[0-9]+/) != nil, "\(T5Runtime.version)")
        let readme = try String(contentsOf: ReadmeExamplesTests.root.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains("`t5 --version` prints the version, now `\(T5Runtime.version)`"), "README names another version")
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
        // A valid negative value is a value too.
        let penalty = try cli.run(["generate", "--model", Fixtures.modelDirectory("t5-relu-tied").path, "--beams", "2",
                                   "--length-penalty", "-0.5", "--max-new-tokens", "2", "x"])
        #expect(penalty.status == 0, "\(penalty.stderr)")
        // A negative number that is an input, after --, stays an input.
        let r = try cli.run(["generate", "--max-new-tokens", "2", "--json", "--", "-1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try cli.jsonLines(r.stdout).first?["input"] as? String == "-1")
    }

    /// Every integer option refuses a negative number as an invalid value, while parsing (exit 64), in one
    /// wording; a value that is not a number at all is argument-parser's own refusal.
    @Test(arguments: [
        (["generate", "--max-new-tokens", "-1", "x"], "invalid value for --max-new-tokens: must be at least 1, got -1"),
        (["generate", "--beams", "-2", "x"], "invalid value for --beams: must be at least 1, got -2"),
        (["generate", "--top-k", "-1", "x"], "invalid value for --top-k: must be 0 (off) or more, got -1"),
        (["generate", "--threads", "-1", "x"], "invalid value for --threads: must be at least 1, got -1"),
        (["score", "--max-input-tokens", "-1", "--input", "a", "--target", "b"], "invalid value for --max-input-tokens: must be at least 1, got -1"),
        (["score", "--truncate", "-1", "--input", "a", "--target", "b"], "invalid value for --truncate: must be at least 2 (a token and </s>), got -1"),
        (["embed", "--pad-to", "-1", "--no-attention-mask", "x"], "invalid value for --pad-to: must be at least 2 (a token and </s>), got -1"),
        (["embed", "--max-input-tokens", "-3", "x"], "invalid value for --max-input-tokens: must be at least 1, got -3"),
        (["bench", "--runs", "-1"], "invalid value for --runs: must be at least 1, got -1"),
        (["finetune", "--train", "t.jsonl", "--out", "o", "--steps", "-1"], "invalid value for --steps: must be at least 1, got -1"),
        (["finetune", "--train", "t.jsonl", "--out", "o", "--save-every", "-5"], "invalid value for --save-every: must be at least 1, got -5"),
        (["finetune", "--train", "t.jsonl", "--out", "o", "--max-target-tokens", "-1"], "invalid value for --max-target-tokens: must be at least 2 (a token and </s>), got -1"),
        (["finetune", "--train", "t.jsonl", "--out", "o", "--seed", "-1"], "The value '-1' is invalid for '--seed <seed>'"),
        (["generate", "--max-new-tokens", "--json", "x"], "The value '--json' is invalid for '--max-new-tokens <max-new-tokens>'"),
    ])
    func negativeIntegersAreInvalidWhileParsing(arguments: [String], message: String) throws {
        let r = try cli.run(arguments + ["--model", Fixtures.modelDirectory("t5-relu-tied").path])
        #expect(r.status == 64 && r.stdout.isEmpty, "\(arguments): \(r.status) \(r.stderr)")
        #expect(r.stderr == "t5: \(message)\n", "\(arguments)")
    }

    /// Whatever option of whatever command is given `-1`, the -1 is its value: never "missing value" nor
    /// an unknown option `-1`. The options are read from argument-parser's own description of each command.
    @Test func everyOptionTakesTheNextArgumentAsItsValue() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("t5-options-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let model = ["T5_MODEL": Fixtures.modelDirectory("t5-relu-tied").path]
        var checked = 0
        for command in ["generate", "score", "tokenize", "embed", "info", "convert", "bench", "finetune"] {
            let dump = try cli.run([command, "--experimental-dump-help"])
            let tool = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
            let arguments = try #require((tool["command"] as? [String: Any])?["arguments"] as? [[String: Any]])
            for argument in arguments where argument["kind"] as? String == "option" {
                let name = try #require((argument["names"] as? [[String: Any]])?.first?["name"] as? String)
                // In a scratch directory: `convert --out -1` and `embed --output -1` write there.
                let r = try cli.run([command, "--\(name)", "-1"], stdinBytes: Data(), environment: model, directory: scratch)
                #expect(!r.stderr.contains("Missing value") && !r.stderr.contains("Unknown option '-1'"), "\(command) --\(name) -1: \(r.stderr)")
                #expect(r.status == 0 || r.stderr.split(separator: "\n").count == 1, "\(command) --\(name) -1: \(r.stderr)")
                checked += 1
            }
        }
        #expect(checked > 60, "only \(checked) options found")
    }

    /// `t5 help COMMAND` is argument-parser's help, and a mistyped COMMAND there is answered as anywhere.
    @Test func helpCommand() throws {
        let help = try cli.run(["help", "generate"])
        #expect(help.status == 0 && help.stdout.hasPrefix("OVERVIEW: Generate text for each input."), "\(help.stderr)")
        let typo = try cli.run(["help", "genrate"])
        #expect(typo.status == 64 && typo.stderr == "t5: unknown command 'genrate'; did you mean 'generate'?\n")
    }

    /// A command blocked reading its input ends with 143 on SIGTERM, whichever command it is: finetune too,
    /// while it loads its data (its training loop, which defers the signal to save, has not started). The
    /// input is a FIFO: opening it for writing succeeds once the command has opened it, so the signal
    /// cannot come before the command runs.
    @Test(arguments: ["tokenize", "score", "embed", "finetune"])
    func sigtermWhileReadingInputExits143(command: String) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("t5-fifo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("input.jsonl")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        let input: [String] = command == "finetune"
            ? ["--train", fifo.path, "--out", dir.appendingPathComponent("out").path]
            : ["--input-file", fifo.path]
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = [command, "--model", Fixtures.modelDirectory("t5-relu-tied").path] + input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var writer: Int32 = -1
        let deadline = Date().addingTimeInterval(30)
        while writer < 0 && process.isRunning && Date() < deadline {
            writer = open(fifo.path, O_WRONLY | O_NONBLOCK)  // ENXIO until the command has it open
            if writer < 0 { Thread.sleep(forTimeInterval: 0.01) }
        }
        #expect(writer >= 0, "\(command) never opened its input")
        defer { if writer >= 0 { close(writer) } }
        kill(process.processIdentifier, SIGTERM)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 143,
                "\(command): \(process.terminationReason) \(process.terminationStatus)")
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

    /// --threads: the same flag, default and help on every command that computes, and the default is the
    /// runtime's (one thread per online core); --quiet: the same on every command.
    @Test func threadsAndQuietAreTheSameEverywhere() throws {
        let cores = Parallel.availableCores
        for command in ["generate", "score", "tokenize", "embed", "info", "convert", "bench", "finetune"] {
            // The help as one line (argument-parser wraps it).
            let help = try cli.run([command, "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            let threads = "--threads <N> Threads for the matrix products and other parallel loops (default: \(cores), one per core this process may run on; at most 256)."
            if ["tokenize", "info"].contains(command) {
                #expect(!help.contains("--threads"), "\(command) computes nothing: \(help)")
            } else {
                #expect(help.contains(threads), "\(command): \(help)")
            }
            #expect(help.contains("--quiet Print nothing on stderr but errors: no progress, notes or warnings."), "\(command): \(help)")
        }
        let model = Fixtures.modelDirectory("t5-relu-tied").path
        try cli.expectFailure(["generate", "--model", model, "--threads", "0", "x"], "invalid value for --threads: must be at least 1, got 0")
        try cli.expectFailure(["generate", "--model", model, "--threads", "100000", "x"], "invalid value for --threads: must be at most 256, got 100000")
        // The default follows the CPU affinity mask: pinned to one core, one thread.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
            process.arguments = ["-c", "0", CLITests.binary.path, "generate", "--help"]
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            let help = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(help.split(whereSeparator: \.isWhitespace).joined(separator: " ").contains("(default: 1, one per core"), "\(help)")
        } else {
            Issue.record("taskset (util-linux) is missing: the affinity default is unchecked")
        }
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
        // score's warning about an input longer than T5's 512 training tokens, and its silence.
        let long = Array(repeating: "word", count: 600).joined(separator: " ")
        let warned = try cli.run(["score", "--model", model, "--input", long, "--target", "x", "--json"])
        #expect(warned.status == 0 && warned.stderr.contains("t5: warning: input 1 has"), "\(warned.stderr)")
        let silent = try cli.run(["score", "--model", model, "--input", long, "--target", "x", "--json", "--quiet"])
        #expect(silent.status == 0 && silent.stderr.isEmpty && silent.stdout == warned.stdout, "\(silent.stderr)")
        // Commands that print nothing on stderr take --quiet too, so that a script can pass it to any.
        for command in [["tokenize", "hello"], ["info"]] {
            let plain = try cli.run(command + ["--model", model]), quieted = try cli.run(command + ["--model", model, "--quiet"])
            #expect(quieted.status == 0 && quieted.stderr.isEmpty && quieted.stdout == plain.stdout, "\(command): \(quieted.stderr)")
        }
    }
}
