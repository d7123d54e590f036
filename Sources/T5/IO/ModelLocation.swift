import Foundation

/// Finds a model the way transformers' `from_pretrained(name)` does offline: a directory, else a snapshot
/// in the Hugging Face hub cache. Nothing is ever downloaded.
///
/// The cache is huggingface_hub's `HF_HUB_CACHE` (constants.py): `$HF_HUB_CACHE`, else the legacy
/// `$HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
/// `~/.cache/huggingface/hub`, each with `~` and `$VAR` expanded as `os.path.expanduser` and
/// `os.path.expandvars` do. A repo id is used as written (`repo_folder_name`): `t5-small` is
/// `models--t5-small`, never `models--google-t5--t5-small`, since only the hub server knows about renamed
/// repos (checked with transformers 5.24 and `HF_HUB_OFFLINE=1`). The snapshot is the one `refs/main`
/// names, as `hf_hub_download` picks it when it cannot reach the hub; its files are symlinks into `blobs/`.
public enum ModelLocation {
    /// The directory `name` names: an existing path, or a cached hub model.
    ///
    /// - Throws: `.modelNotFound` naming every place looked at, when `name` is a hub-style id that is not
    ///   cached; `.missingFile` for a path that does not exist.
    public static func resolve(_ name: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(T5Error) -> URL {
        let url = URL(fileURLWithPath: name)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            // Said here, once, for every command: a file named where a model directory belongs would
            // otherwise surface as whichever file inside it a command happens to read first.
            guard isDirectory.boolValue else {
                throw .unreadableFile(path: url.path, reason: "not a directory (a model is a directory with config.json, model.safetensors and spiece.model)")
            }
            return url
        }
        // A hub id is NAME or ORG/NAME: no leading '/', '.' or '~', at most one '/'.
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, parts.count <= 2, parts.allSatisfy({ !$0.isEmpty }), !name.hasPrefix("."), !name.hasPrefix("~") else {
            throw .missingFile(path: url.path)
        }
        let repo = cacheDirectory(environment).appendingPathComponent("models--" + parts.joined(separator: "--"))
        switch snapshot(in: repo) {
        case .found(let directory):
            return directory
        case .missing(let detail):
            throw .modelNotFound(name: name, searched: [url.path, repo.appendingPathComponent("snapshots").path + detail])
        }
    }

    /// huggingface_hub's `HF_HUB_CACHE`. A variable set to the empty string counts as unset here, where
    /// Python would take "" for the current directory.
    static func cacheDirectory(_ environment: [String: String]) -> URL {
        func value(_ name: String) -> String? {
            environment[name].flatMap { $0.isEmpty ? nil : $0 }
        }
        let home = value("HOME") ?? NSHomeDirectory()
        let hub: String
        if let explicit = value("HF_HUB_CACHE") ?? value("HUGGINGFACE_HUB_CACHE") {
            hub = explicit
        } else {
            let hfHome = value("HF_HOME") ?? ((value("XDG_CACHE_HOME") ?? home + "/.cache") + "/huggingface")
            hub = expand(hfHome, environment: environment, home: home) + "/hub"
        }
        return URL(fileURLWithPath: expand(hub, environment: environment, home: home))
    }

    /// `os.path.expandvars(os.path.expanduser(path))`: a leading `~` or `~user`, then every `$NAME` or
    /// `${NAME}` that is set (an unset one stays as written).
    static func expand(_ path: String, environment: [String: String], home: String) -> String {
        var path = path
        if path.hasPrefix("~") {
            let end = path.firstIndex(of: "/") ?? path.endIndex
            let user = String(path[path.index(after: path.startIndex)..<end])
            if let directory = user.isEmpty ? home : FileManager.default.homeDirectory(forUser: user)?.path {
                path = directory + path[end...]
            }
        }
        guard path.contains("$") else { return path }
        let scalars = Array(path.unicodeScalars)
        func isNameScalar(_ s: Unicode.Scalar) -> Bool { s.isASCII && (s == "_" || s.properties.isAlphabetic || ("0"..."9").contains(s)) }
        var output = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            guard scalars[i] == "$", i + 1 < scalars.count else {
                output.append(scalars[i]); i += 1; continue
            }
            var name = "", next = i + 1
            if scalars[next] == "{" {
                guard let close = scalars[(next + 1)...].firstIndex(of: "}") else { output.append(scalars[i]); i += 1; continue }
                name = String(String.UnicodeScalarView(scalars[(next + 1)..<close]))
                next = close + 1
            } else {
                while next < scalars.count, isNameScalar(scalars[next]) { next += 1 }
                name = String(String.UnicodeScalarView(scalars[(i + 1)..<next]))
            }
            if !name.isEmpty, let replacement = environment[name] {
                output.append(contentsOf: replacement.unicodeScalars)
            } else {
                output.append(contentsOf: scalars[i..<next])
            }
            i = next
        }
        return String(output)
    }

    enum Snapshot {
        case found(URL)
        /// Why the repo folder gives no snapshot, for the error ("" when the folder does not exist).
        case missing(String)
    }

    /// The snapshot `refs/main` names. When there is no usable `refs/main` and exactly one snapshot, that
    /// one: a cache copied by hand often lacks `refs/`. (huggingface_hub itself "won't try to return a
    /// random revision" and would fail there; with a single snapshot there is nothing to choose.)
    static func snapshot(in repo: URL) -> Snapshot {
        let snapshots = repo.appendingPathComponent("snapshots")
        guard FileManager.default.fileExists(atPath: repo.path) else { return .missing("") }
        var named = ""
        if let ref = try? String(contentsOf: repo.appendingPathComponent("refs/main"), encoding: .utf8) {
            let hash = ref.trimmingCharacters(in: .whitespacesAndNewlines)
            let dir = snapshots.appendingPathComponent(hash)
            if !hash.isEmpty, !hash.contains("/"), FileManager.default.fileExists(atPath: dir.path) { return .found(dir) }
            named = "refs/main names \(hash), "
        }
        let all = ((try? FileManager.default.contentsOfDirectory(atPath: snapshots.path)) ?? []).filter { !$0.hasPrefix(".") }
        if all.count == 1 { return .found(snapshots.appendingPathComponent(all[0])) }
        let refs = named.isEmpty ? "no refs/main, " : named
        return .missing(" (\(refs)\(all.count) snapshot\(all.count == 1 ? "" : "s"))")
    }
}
