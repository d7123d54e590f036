import Foundation

/// Where a command writes a model or a run. Nothing a user saved is ever overwritten: a new output goes
/// into a directory that does not exist yet or is empty, never beside files we did not write.
public enum OutputDirectory {
    /// Refuses `url` unless it is absent or an empty directory; `option` names the flag in the error.
    /// Names `isOurs` accepts (a crashed run's temporaries) do not count as content.
    public static func requireNew(_ url: URL, option: String, isOurs: (String) -> Bool = { _ in false }) throws(T5Error) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue else {
            throw .invalidOption(name: option, reason: "\(url.path) is a file, not a directory")
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
        } catch {
            throw .invalidOption(name: option, reason: "cannot list \(url.path): \(error.localizedDescription)")
        }
        if let foreign = names.first(where: { !isOurs($0) }) {
            throw .invalidOption(name: option, reason: "\(url.path) is not empty (it holds \(foreign)); choose a new or empty directory")
        }
    }

    /// Writes a whole directory at once: `fill` writes into a hidden sibling, which is then renamed to `url`
    /// (`url` must be absent or empty). An interrupted or failed write leaves no partial `url`.
    public static func writeAtomically(_ url: URL, option: String, _ fill: (URL) throws(T5Error) -> Void) throws(T5Error) {
        try requireNew(url, option: option)
        let parent = url.deletingLastPathComponent()
        let temporary = parent.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        try? FileManager.default.removeItem(at: temporary)
        do {
            try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
        } catch {
            throw .writeFailed(path: url.path, reason: "cannot create \(temporary.path): \(error.localizedDescription)")
        }
        do throws(T5Error) {
            try fill(temporary)
            // rename(2) replaces an empty directory, and fails (ENOTEMPTY) if one appeared meanwhile.
            guard rename(temporary.path, url.path) == 0 else {
                throw .writeFailed(path: url.path, reason: "cannot rename \(temporary.lastPathComponent): \(String(cString: strerror(errno)))")
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }
}
