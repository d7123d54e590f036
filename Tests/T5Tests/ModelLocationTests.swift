import Foundation
import Testing
@testable import T5

/// `--model ORG/NAME` finds a model in the Hugging Face hub cache as transformers does offline (refs/main
/// → snapshot, files symlinked into blobs/), and says where it looked when it is not there.
@Suite struct ModelLocationTests {
    let cli = CLITests()

    /// A hub cache holding the fixture model as `models--test-org--tiny-t5`, laid out as huggingface_hub
    /// writes it: blobs named by hash, a snapshot of relative symlinks, refs/main naming the snapshot.
    func fakeCache() throws -> (root: URL, hub: URL) {
        let root = try scratchDirectory("hf-cache")
        let hub = root.appendingPathComponent("hub")
        let repo = hub.appendingPathComponent("models--test-org--tiny-t5")
        let blobs = repo.appendingPathComponent("blobs"), snapshot = repo.appendingPathComponent("snapshots/0123abcd")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        // A second, older snapshot: refs/main must decide.
        try FileManager.default.createDirectory(at: repo.appendingPathComponent("snapshots/ffff0000"), withIntermediateDirectories: true)
        let source = Fixtures.modelDirectory("t5-relu-tied")
        for (i, name) in try FileManager.default.contentsOfDirectory(atPath: source.path).enumerated() {
            let blob = "blob\(i)"
            try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: blobs.appendingPathComponent(blob))
            try FileManager.default.createSymbolicLink(atPath: snapshot.appendingPathComponent(name).path, withDestinationPath: "../../blobs/\(blob)")
        }
        try FileManager.default.createDirectory(at: repo.appendingPathComponent("refs"), withIntermediateDirectories: true)
        try Data("0123abcd".utf8).write(to: repo.appendingPathComponent("refs/main"))
        return (root, hub)
    }

    @Test func hubNamesResolveInTheCache() throws {
        let (root, hub) = try fakeCache()
        defer { try? FileManager.default.removeItem(at: root) }
        let direct = try cli.run(["score", "--model", Fixtures.modelDirectory("t5-relu-tied").path, "--input", "a b", "--target", "b a"])
        for environment in [["HF_HUB_CACHE": hub.path], ["HF_HOME": root.path, "HF_HUB_CACHE": ""],
                            ["XDG_CACHE_HOME": root.path + "/xdg", "HF_HOME": "", "HF_HUB_CACHE": ""]] {
            if let xdg = environment["XDG_CACHE_HOME"] {
                try FileManager.default.createDirectory(atPath: xdg + "/huggingface", withIntermediateDirectories: true)
                if !FileManager.default.fileExists(atPath: xdg + "/huggingface/hub") {
                    try FileManager.default.createSymbolicLink(atPath: xdg + "/huggingface/hub", withDestinationPath: hub.path)
                }
            }
            let r = try cli.run(["score", "--model", "test-org/tiny-t5", "--input", "a b", "--target", "b a"], stdinBytes: nil, environment: environment)
            #expect(r.status == 0, "\(environment): \(r.stderr)")
            #expect(r.stdout == direct.stdout, "\(environment)")
        }
        #expect(try ModelLocation.resolve("test-org/tiny-t5", environment: ["HF_HUB_CACHE": hub.path]).lastPathComponent == "0123abcd")
    }

    @Test func aModelNotInTheCacheSaysWhereItLookedAndThatNothingIsDownloaded() throws {
        let (root, hub) = try fakeCache()
        defer { try? FileManager.default.removeItem(at: root) }
        let r = try cli.run(["generate", "--model", "google/flan-t5-small", "hi"], stdinBytes: nil, environment: ["HF_HUB_CACHE": hub.path])
        #expect(r.status != 0)
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("\(hub.path)/models--google--flan-t5-small/snapshots"), "\(r.stderr)")
        #expect(r.stderr.contains("never downloads"), "\(r.stderr)")
        #expect(r.stderr.contains("huggingface-cli download google/flan-t5-small"), "\(r.stderr)")
        // A path that does not exist stays a path.
        try cli.expectFailure(["generate", "--model", "/no/such/dir", "hi"], "/no/such/dir: no such file or directory")
    }
}
