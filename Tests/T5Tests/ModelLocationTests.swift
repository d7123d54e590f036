import Foundation
import Testing
@testable import T5

/// `--model ORG/NAME` finds a model in the Hugging Face hub cache as transformers does offline (refs/main
/// → snapshot, files symlinked into blobs/), and says where it looked when it is not there.
@Suite struct ModelLocationTests {
    let cli = CLITests()
    static let scoreArguments = ["--input", "a b", "--target", "b a"]

    /// Puts the fixture model into the hub cache `hub` as `repo` (`models--ORG--NAME`), laid out as
    /// huggingface_hub writes it: blobs named by hash, a snapshot of relative symlinks into them, and
    /// `refs/main` naming the snapshot when `refs` is true. `otherSnapshots` empty snapshots come too.
    func addRepo(_ repo: String, to hub: URL, refs: Bool = true, otherSnapshots: Int = 0) throws {
        let folder = hub.appendingPathComponent(repo)
        let blobs = folder.appendingPathComponent("blobs"), snapshot = folder.appendingPathComponent("snapshots/0123abcd")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        for i in 0..<otherSnapshots {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("snapshots/ffff000\(i)"), withIntermediateDirectories: true)
        }
        let source = Fixtures.modelDirectory("t5-relu-tied")
        for (i, name) in try FileManager.default.contentsOfDirectory(atPath: source.path).enumerated() {
            let blob = "blob\(i)"
            try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: blobs.appendingPathComponent(blob))
            try FileManager.default.createSymbolicLink(atPath: snapshot.appendingPathComponent(name).path, withDestinationPath: "../../blobs/\(blob)")
        }
        if refs {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("refs"), withIntermediateDirectories: true)
            try Data("0123abcd".utf8).write(to: folder.appendingPathComponent("refs/main"))
        }
    }

    /// A scratch root with `hub/models--test-org--tiny-t5` (refs/main and a second, older snapshot, so
    /// that refs/main must decide).
    func fakeCache() throws -> (root: URL, hub: URL) {
        let root = try scratchDirectory("hf-cache")
        let hub = root.appendingPathComponent("hub")
        try addRepo("models--test-org--tiny-t5", to: hub, otherSnapshots: 1)
        return (root, hub)
    }

    /// The variables that choose the cache, cleared (an empty value counts as unset), then `set`.
    func environment(_ set: [String: String]) -> [String: String] {
        var environment = ["HF_HUB_CACHE": "", "HUGGINGFACE_HUB_CACHE": "", "HF_HOME": "", "XDG_CACHE_HOME": ""]
        environment.merge(set) { $1 }
        return environment
    }

    func direct() throws -> CLITests.Result {
        try cli.run(["score", "--model", Fixtures.modelDirectory("t5-relu-tied").path] + Self.scoreArguments)
    }

    @Test func hubNamesResolveInTheCache() throws {
        let (root, hub) = try fakeCache()
        defer { try? FileManager.default.removeItem(at: root) }
        let direct = try direct()
        let xdg = root.appendingPathComponent("xdg")
        try FileManager.default.createDirectory(at: xdg.appendingPathComponent("huggingface"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: xdg.appendingPathComponent("huggingface/hub"), withDestinationURL: hub)
        for set in [["HF_HUB_CACHE": hub.path], ["HUGGINGFACE_HUB_CACHE": hub.path], ["HF_HOME": root.path],
                    ["XDG_CACHE_HOME": xdg.path],
                    // HF_HUB_CACHE wins over HF_HOME, as in huggingface_hub's constants.py.
                    ["HF_HUB_CACHE": hub.path, "HF_HOME": "/nonexistent"],
                    // ~ and $VAR are expanded as os.path.expanduser / os.path.expandvars do.
                    ["HOME": root.path, "HF_HOME": "~"], ["CACHE_ROOT": root.path, "HF_HUB_CACHE": "${CACHE_ROOT}/hub"],
                    ["CACHE_ROOT": root.path, "HF_HOME": "$CACHE_ROOT"]] {
            let r = try cli.run(["score", "--model", "test-org/tiny-t5"] + Self.scoreArguments, stdinBytes: nil, environment: environment(set))
            #expect(r.status == 0, "\(set): \(r.stderr)")
            #expect(r.stdout == direct.stdout, "\(set)")
        }
        #expect(try ModelLocation.resolve("test-org/tiny-t5", environment: ["HF_HUB_CACHE": hub.path]).lastPathComponent == "0123abcd")
        // t5 info shows the snapshot's files as the symlinks into blobs/ they are.
        let info = try cli.run(["info", "--model", "test-org/tiny-t5"], stdinBytes: nil, environment: environment(["HF_HUB_CACHE": hub.path]))
        #expect(info.stdout.contains("config.json -> ../../blobs/"), "\(info.stdout)")
    }

    /// A bare NAME is `models--NAME`, as huggingface_hub names the folder: `t5-small` is not looked up as
    /// `google-t5/t5-small` (only the hub server redirects renamed repos).
    @Test func aBareNameIsItsOwnFolder() throws {
        let root = try scratchDirectory("hf-cache-bare")
        defer { try? FileManager.default.removeItem(at: root) }
        let hub = root.appendingPathComponent("hub")
        try addRepo("models--google-t5--t5-small", to: hub)
        try addRepo("models--t5-base", to: hub)
        let env = environment(["HF_HUB_CACHE": hub.path])
        let direct = try direct()
        for name in ["google-t5/t5-small", "t5-base"] {
            let r = try cli.run(["score", "--model", name] + Self.scoreArguments, stdinBytes: nil, environment: env)
            #expect(r.status == 0 && r.stdout == direct.stdout, "\(name): \(r.stderr)")
        }
        let r = try cli.run(["score", "--model", "t5-small"] + Self.scoreArguments, stdinBytes: nil, environment: env)
        #expect(r.status == 1)
        #expect(r.stderr.contains("\(hub.path)/models--t5-small/snapshots"), "\(r.stderr)")
    }

    /// Without refs/main a single snapshot is taken (a cache copied by hand); several are refused, saying so.
    @Test func withoutRefsMainOnlyASingleSnapshotIsTaken() throws {
        let root = try scratchDirectory("hf-cache-norefs")
        defer { try? FileManager.default.removeItem(at: root) }
        let hub = root.appendingPathComponent("hub")
        try addRepo("models--org--single", to: hub, refs: false)
        try addRepo("models--org--several", to: hub, refs: false, otherSnapshots: 2)
        let env = environment(["HF_HUB_CACHE": hub.path])
        let r = try cli.run(["score", "--model", "org/single"] + Self.scoreArguments, stdinBytes: nil, environment: env)
        let direct = try direct()
        #expect(r.status == 0 && r.stdout == direct.stdout, "\(r.stderr)")
        let several = try cli.run(["score", "--model", "org/several"] + Self.scoreArguments, stdinBytes: nil, environment: env)
        #expect(several.status == 1)
        #expect(several.stderr.contains("models--org--several/snapshots (no refs/main, 3 snapshots)"), "\(several.stderr)")
        // refs/main naming a snapshot that is not there (a partial copy) is said too.
        try FileManager.default.createDirectory(at: hub.appendingPathComponent("models--org--several/refs"), withIntermediateDirectories: true)
        try Data("deadbeef".utf8).write(to: hub.appendingPathComponent("models--org--several/refs/main"))
        let stale = try cli.run(["score", "--model", "org/several"] + Self.scoreArguments, stdinBytes: nil, environment: env)
        #expect(stale.stderr.contains("(refs/main names deadbeef, 3 snapshots)"), "\(stale.stderr)")
    }

    @Test func aModelNotInTheCacheSaysWhereItLookedAndThatNothingIsDownloaded() throws {
        let (root, hub) = try fakeCache()
        defer { try? FileManager.default.removeItem(at: root) }
        let r = try cli.run(["generate", "--model", "google/flan-t5-small", "hi"], stdinBytes: nil, environment: environment(["HF_HUB_CACHE": hub.path]))
        #expect(r.status == 1)
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        let cwd = FileManager.default.currentDirectoryPath
        #expect(r.stderr.contains("looked for \(cwd)/google/flan-t5-small, \(hub.path)/models--google--flan-t5-small/snapshots)"), "\(r.stderr)")
        #expect(r.stderr.contains("never downloads"), "\(r.stderr)")
        #expect(r.stderr.contains("hf download google/flan-t5-small --local-dir DIR"), "\(r.stderr)")
        #expect(r.stderr.contains("save_pretrained(DIR)"), "\(r.stderr)")
        // $T5_MODEL is resolved the same way.
        let fromEnvironment = try cli.run(["generate", "hi"], stdinBytes: nil, environment: environment(["HF_HUB_CACHE": hub.path, "T5_MODEL": "google/flan-t5-small"]))
        #expect(fromEnvironment.stderr.contains("models--google--flan-t5-small/snapshots"), "\(fromEnvironment.stderr)")
        // A path that does not exist stays a path.
        try cli.expectFailure(["generate", "--model", "/no/such/dir", "hi"], "/no/such/dir: no such file or directory")
        try cli.expectFailure(["generate", "--model", "./org/name", "hi"], "org/name: no such file or directory")
    }

    @Test func expansionFollowsPython() {
        let env = ["A": "/a", "B_2": "b"]
        #expect(ModelLocation.expand("~/x", environment: env, home: "/h") == "/h/x")
        #expect(ModelLocation.expand("~", environment: env, home: "/h") == "/h")
        #expect(ModelLocation.expand("x/~", environment: env, home: "/h") == "x/~")
        #expect(ModelLocation.expand("$A/${B_2}/$B_2.c", environment: env, home: "/h") == "/a/b/b.c")
        // Unset names, a lone $ and an unclosed brace stay as written, as os.path.expandvars leaves them.
        #expect(ModelLocation.expand("$NOPE/$/${A", environment: env, home: "/h") == "$NOPE/$/${A")
        #expect(ModelLocation.expand("~no-such-user-t5/x", environment: env, home: "/h") == "~no-such-user-t5/x")
    }
}
