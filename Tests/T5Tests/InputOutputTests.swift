import Foundation
import Testing
@testable import T5

/// What every command reads and writes: one reader for files, FIFOs, devices, stdin and arguments (CRLF,
/// byte order marks, bytes that are not UTF-8, blank lines), and output directories that never receive a
/// file beside something the user saved.
@Suite struct InputOutputTests {
    let cli = CLITests()

    static var digits: String { InferenceHardeningTests.digits }

    func scratchDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("t5-io-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    // MARK: reading

    @Test func linesSplitOnLFAndCRLFAfterAByteOrderMark() throws {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("a\r\nb\n\nc".utf8)
        let lines = try TextFile.lines(bytes, name: "x")
        #expect(lines.map(\.text) == ["a", "b", "", "c"])
        #expect(lines.map(\.number) == [1, 2, 3, 4])
        #expect(try TextFile.lines(Array("a\n".utf8), name: "x").map(\.text) == ["a"])
        #expect(try TextFile.lines([], name: "x").isEmpty)
    }

    @Test func invalidUTF8IsRefusedWithItsLine() throws {
        #expect(throws: T5Error.invalidData(path: "in.txt", line: 2, reason: "not valid UTF-8 text")) {
            try TextFile.lines(Array("ok\n".utf8) + [0x61, 0xC3, 0x28], name: "in.txt")
        }
        // stdin, an --input-file and a TEXT argument alike: never replaced by U+FFFD and answered.
        let bad = Data("reverse: 3 1\n".utf8) + Data([0x72, 0xFF, 0x0A])
        let r = try cli.run(["generate", "--model", Self.digits], stdinBytes: bad)
        #expect(r.status == 1 && r.stdout.isEmpty && r.stderr == "t5: stdin:2: not valid UTF-8 text\n", "\(r)")
        let file = try scratchDirectory().appendingPathComponent("inputs.txt")
        try bad.write(to: file)
        try cli.expectFailure(["generate", "--model", Self.digits, "--input-file", file.path], "\(file.path):2: not valid UTF-8 text")
        try cli.expectFailure(["tokenize", "--model", Self.digits, "--input-file", file.path], "\(file.path):2: not valid UTF-8 text")
        // Built by the shell as raw bytes: argv[3] = "a\xFFb".
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec \"$0\" generate --model \"$1\" \"$(printf 'a\\377b')\"", CLITests.binary.path, Self.digits]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 64)
        #expect(message == "t5: argument 4 is not valid UTF-8 text\n")
    }

    @Test func crlfInputsAnswerAsLFInputs() throws {
        let lf = try cli.run(["generate", "--model", Self.digits], stdin: "reverse: 3 1 4\nsort: 3 1 2\n")
        let crlf = try cli.run(["generate", "--model", Self.digits], stdin: "reverse: 3 1 4\r\nsort: 3 1 2\r\n")
        #expect(lf.status == 0 && lf.stdout == "4 1 3\n1 2 3\n", "\(lf)")
        #expect(crlf.stdout == lf.stdout)
    }

    @Test func fifosAndDevicesReadLikeFiles() throws {
        let dir = try scratchDirectory()
        let fifo = dir.appendingPathComponent("inputs")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        let writer = Thread {
            if let h = FileHandle(forWritingAtPath: fifo.path) {
                h.write(Data("reverse: 1 2 3\n".utf8))
                try? h.close()
            }
        }
        writer.start()
        let r = try cli.run(["generate", "--model", Self.digits, "--input-file", fifo.path])
        #expect(r.status == 0 && r.stdout == "3 2 1\n", "\(r)")
        let empty = try cli.run(["generate", "--model", Self.digits, "--input-file", "/dev/null"])
        #expect(empty.status == 0 && empty.stdout.isEmpty && empty.stderr.isEmpty, "\(empty)")
        try cli.expectFailure(["generate", "--model", Self.digits, "--input-file", dir.path], "\(dir.path): cannot read: is a directory")
        try cli.expectFailure(["generate", "--model", Self.digits, "--input-file", dir.appendingPathComponent("nope").path], "no such file")
        let locked = dir.appendingPathComponent("locked.txt")
        try Data("x\n".utf8).write(to: locked)
        chmod(locked.path, 0)
        if getuid() != 0 {  // root reads any file; the permission error is then not reachable
            try cli.expectFailure(["generate", "--model", Self.digits, "--input-file", locked.path], "Permission denied")
        }
    }

    @Test func blankDataLinesAreSkippedWhateverTheirWhitespace() throws {
        let file = try DataFile(data: Data("a\tb\n \t \n\t\n\r\nc\td\n".utf8), path: "x.tsv")
        #expect(file.examples.map(\.input) == ["a", "c"])
        #expect(file.emptyLines == 3)
        let jsonl = try DataFile(data: Data("\t{\"input\": \"a\", \"target\": \"b\"}\n \t\n".utf8), path: "data")
        #expect(jsonl.format == .jsonLines && jsonl.examples.count == 1)
    }

    // MARK: writing

    @Test func convertNeverWritesBesideAUsersFiles() throws {
        let out = try scratchDirectory()
        let notes = out.appendingPathComponent("notes.txt")
        try Data("mine".utf8).write(to: notes)
        try cli.expectFailure(["convert", "--model", Self.digits, "--weights", "bf16", "--out", out.path],
                              "\(out.path) is not empty (it holds notes.txt)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path) == ["notes.txt"])
        #expect(try Data(contentsOf: notes) == Data("mine".utf8))
        // A new or empty directory is written whole and renamed into place: no temporary is left.
        let fresh = out.deletingLastPathComponent().appendingPathComponent("t5-io-\(UUID().uuidString)")
        let r = try cli.run(["convert", "--model", Self.digits, "--weights", "bf16", "--out", fresh.path])
        #expect(r.status == 0, "\(r)")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: fresh.path)) == ["config.json", "model.safetensors", "spiece.model", "generation_config.json"])
        let siblings = try FileManager.default.contentsOfDirectory(atPath: fresh.deletingLastPathComponent().path)
        #expect(!siblings.contains { $0.hasPrefix(".\(fresh.lastPathComponent).tmp-") })
        _ = try T5Model(directory: fresh)
    }

    @Test func finetuneNeverWritesBesideAUsersFiles() throws {
        let out = try scratchDirectory()
        try Data("mine".utf8).write(to: out.appendingPathComponent("config.json"))
        let data = out.deletingLastPathComponent().appendingPathComponent("t5-io-\(UUID().uuidString).tsv")
        try Data("reverse: 1 2\t2 1\n".utf8).write(to: data)
        for extra in [[], ["--resume"]] {
            try cli.expectFailure(["finetune", "--model", Self.digits, "--train", data.path, "--out", out.path, "--steps", "1"] + extra,
                                  "\(out.path) is not empty (it holds config.json)")
        }
        #expect(try Data(contentsOf: out.appendingPathComponent("config.json")) == Data("mine".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path) == ["config.json"])
    }
}

extension InputOutputTests {
    @Test func infoReportsTheSizeOfWhatALinkPointsTo() throws {
        // The Hugging Face hub cache: every file of a snapshot is a symlink to a blob.
        let dir = try scratchDirectory()
        let source = URL(fileURLWithPath: Self.digits)
        for name in try FileManager.default.contentsOfDirectory(atPath: source.path) {
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(name), withDestinationURL: source.appendingPathComponent(name))
        }
        let r = try cli.run(["info", "--model", dir.path])
        #expect(r.status == 0, "\(r)")
        let bytes = try #require(FileManager.default.attributesOfItem(atPath: source.appendingPathComponent("model.safetensors").path)[.size] as? NSNumber).intValue
        let line = try #require(r.stdout.split(separator: "\n").first { $0.contains("model.safetensors") })
        #expect(!line.contains(" B") || bytes < 1024, "\(line)")
        #expect(line.contains(formatBytesForTest(bytes)), "\(line) should show \(bytes) bytes")
    }

    @Test func temporaryNamesAreOnlyOurs() {
        for name in [".checkpoint-12.tmp-345", ".checkpoint-3.old-9", ".config.json.tmp-12-3456", ".model.safetensors.tmp-link-77"] {
            #expect(Checkpoint.isTemporary(name), "\(name)")
        }
        for name in [".bashrc", ".notes.tmp-draft", ".checkpoint-notes", ".x.tmp-1", "config.json.tmp-1-2", ".checkpoint-1.tmp-", ".git"] {
            #expect(!Checkpoint.isTemporary(name), "\(name)")
        }
    }

    @Test func aFIFOTrainsLikeAFile() throws {
        let fifo = try scratchDirectory().appendingPathComponent("train.tsv")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        let writer = Thread {
            if let h = FileHandle(forWritingAtPath: fifo.path) {
                h.write(Data("a\tb\n\t\nc\td\n".utf8))
                try? h.close()
            }
        }
        writer.start()
        let file = try DataFile(path: fifo.path)
        #expect(file.examples.map(\.target) == ["b", "d"] && file.emptyLines == 1)
    }
}

/// `t5 info`'s documented size format (binary units, one decimal).
private func formatBytesForTest(_ n: Int) -> String {
    n >= 1 << 20 ? String(format: "%.1f MiB", Double(n) / Double(1 << 20)) : String(format: "%.1f KiB", Double(n) / Double(1 << 10))
}
