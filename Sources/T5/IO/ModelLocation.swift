import Foundation

/// Finds a model the way transformers' `from_pretrained(name)` does offline: a directory, else a snapshot
/// in the Hugging Face hub cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else
/// `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`, as huggingface_hub's constants.py
/// resolves them), at `models--ORG--NAME/snapshots/<refs/main>/`, whose files are symlinks into
/// `blobs/`. Nothing is ever downloaded.
public enum ModelLocation {
    /// The directory `name` names: an existing path, or a cached hub model.
    ///
    /// - Throws: `.modelNotFound` naming every place looked at, when `name` is a hub-style id that is not
    ///   cached; `.missingFile` for a path that does not exist.
    public static func resolve(_ name: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(T5Error) -> URL {
        let url = URL(fileURLWithPath: name)
        if FileManager.default.fileExists(atPath: url.path) { return url }
        // A hub id is NAME or ORG/NAME: no leading '/', '.' or '~', at most one '/'.
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, parts.count <= 2, parts.allSatisfy({ !$0.isEmpty }), !name.hasPrefix("."), !name.hasPrefix("~") else {
            throw .missingFile(path: url.path)
        }
        let folder = "models--" + parts.joined(separator: "--")
        let repo = cacheDirectory(environment).appendingPathComponent(folder)
        if let snapshot = snapshot(in: repo) { return snapshot }
        throw .modelNotFound(name: name, searched: [url.path, repo.appendingPathComponent("snapshots").path])
    }

    /// huggingface_hub's HF_HUB_CACHE.
    static func cacheDirectory(_ environment: [String: String]) -> URL {
        if let hub = environment["HF_HUB_CACHE"] ?? environment["HUGGINGFACE_HUB_CACHE"], !hub.isEmpty {
            return URL(fileURLWithPath: hub)
        }
        if let home = environment["HF_HOME"], !home.isEmpty {
            return URL(fileURLWithPath: home).appendingPathComponent("hub")
        }
        let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: environment["HOME"] ?? NSHomeDirectory()).appendingPathComponent(".cache")
        return cache.appendingPathComponent("huggingface/hub")
    }

    /// The snapshot `refs/main` points at, else the only snapshot there is.
    static func snapshot(in repo: URL) -> URL? {
        let snapshots = repo.appendingPathComponent("snapshots")
        if let ref = try? String(contentsOf: repo.appendingPathComponent("refs/main"), encoding: .utf8) {
            let hash = ref.trimmingCharacters(in: .whitespacesAndNewlines)
            let dir = snapshots.appendingPathComponent(hash)
            if !hash.isEmpty, !hash.contains("/"), FileManager.default.fileExists(atPath: dir.path) { return dir }
        }
        let all = (try? FileManager.default.contentsOfDirectory(atPath: snapshots.path)) ?? []
        return all.count == 1 ? snapshots.appendingPathComponent(all[0]) : nil
    }
}
