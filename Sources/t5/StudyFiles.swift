import Foundation
import T5

/// The files of a study directory:
///
/// ```
/// OUT/study.json             the study (Study), replaced atomically after every change
/// OUT/trials/N/              trial N's run directory (the trial command's --out: metrics.jsonl, checkpoint, model)
/// OUT/trials/N.log           its stderr, every launch preceded by a line giving the command
/// OUT/trials/N.json          the --json summary of its last segment
/// OUT/best.json, best-command.txt, best/   the results
/// OUT/report.html            `t5 report OUT`
/// ```
enum StudyFiles {
    static let names: Set<String> = [Study.file, "trials", "best", "best.json", "best-command.txt", "report.html", ".lock"]

    static func trialDirectory(_ directory: URL, _ id: Int) -> URL {
        directory.appendingPathComponent("trials/\(id)")
    }

    static func log(_ directory: URL, _ id: Int) -> URL {
        directory.appendingPathComponent("trials/\(id).log")
    }

    static func summary(_ directory: URL, _ id: Int) -> URL {
        directory.appendingPathComponent("trials/\(id).json")
    }

    /// An exclusive lock on the study, so two `t5 tune` never drive it at once. Held until the process ends.
    static func lock(_ directory: URL) throws(T5Error) -> Int32 {
        do {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("trials"), withIntermediateDirectories: true)
        } catch {
            throw .writeFailed(path: directory.path, reason: error.localizedDescription)
        }
        let fd = open(directory.appendingPathComponent(".lock").path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .writeFailed(path: directory.appendingPathComponent(".lock").path, reason: String(cString: strerror(errno))) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw .invalidOption(name: "--out", reason: "another t5 tune is running the study in \(directory.path)")
        }
        return fd
    }

    /// Removes what a study wrote (only its own names) for --force-new.
    static func removeStudy(in directory: URL) {
        for name in names { try? FileManager.default.removeItem(at: directory.appendingPathComponent(name)) }
    }

    /// A data argument with its file's size and FNV-1a hash, so a study rerun on changed data is refused.
    static func fingerprint(_ argument: String) throws(T5Error) -> String {
        let source = TaskSource.parse(argument)
        guard let data = FileManager.default.contents(atPath: source.path) else { throw .missingFile(path: source.path) }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return "\(argument) (\(data.count) bytes, fnv1a \(String(hash, radix: 16)))"
    }

    /// Deletes a trial's checkpoint and model, keeping its metrics.jsonl (for the report).
    static func freeCheckpoints(_ directory: URL, _ id: Int) {
        let trial = trialDirectory(directory, id)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: trial.path)) ?? []
        for name in names where name != "metrics.jsonl" {
            try? FileManager.default.removeItem(at: trial.appendingPathComponent(name))
        }
    }

    /// Bytes on disk under `url`, each hard-linked file counted once (a run's top-level model links its checkpoint's files).
    static func diskUse(_ url: URL) -> Int {
        var seen = Set<UInt64>()
        var total = 0
        guard let walker = FileManager.default.enumerator(atPath: url.path) else { return 0 }
        while let relative = walker.nextObject() as? String {
            var info = stat()
            guard lstat(url.appendingPathComponent(relative).path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            if seen.insert(UInt64(info.st_ino)).inserted { total += Int(info.st_size) }
        }
        return total
    }
}
