import Foundation
import T5

/// A study's record, `OUT/study.json`: the settings it was made with and every trial's configuration, status
/// and results. It is replaced atomically (`AtomicFile`) after every change, so `kill -9` of `t5 tune` at any
/// moment leaves the last complete record, and the trials' own checkpoints hold their progress since.
struct Study: Codable {
    static let file = "study.json"
    static let version = 1

    var version = Study.version
    /// The settings a rerun must repeat, in a fixed order, as (name, value) pairs: the first one that
    /// differs is named when a rerun is refused.
    var signature: [[String]]
    /// Lower-is-better direction of the metric: false for exact match.
    var metric: String
    var strategy: String
    var rungs: [Int]
    var trials: [Trial] = []

    enum Status: String, Codable {
        /// A process trains it (or did, when `t5 tune` was killed: a rerun continues it from its checkpoint).
        case running
        /// Waiting at a rung for a promotion (ASHA).
        case paused
        /// Can never be promoted: stopped early; its checkpoints are deleted.
        case pruned
        /// Trained to --max-steps.
        case complete
        /// Its process failed; `error` says why.
        case failed
    }

    struct Parameter: Codable, Equatable {
        var name: String
        /// As on the command line; "true"/"false" for flags.
        var value: String
        /// For plots: the value when it is a number.
        var number: Double?
    }

    struct Trial: Codable {
        var id: Int
        var parameters: [Parameter]
        /// The options the parameters become, in the space's order.
        var arguments: [String]
        var seed: UInt64
        var status: Status
        /// The metric at each rung reached (null: not finite).
        var results: [Double?] = []
        /// Sent on past its last result (ASHA), whether or not that segment finished.
        var promoted = false
        /// The rung its current or last segment trains to.
        var targetRung = 0
        /// Steps trained so far (as its last segment reported).
        var steps = 0
        /// Wall-clock seconds of its segments.
        var wallSeconds = 0.0
        /// Processes started for it.
        var launches = 0
        var error: String?
        /// The process of its running segment, to stop an orphan a killed `t5 tune` left.
        var pid: Int32?
    }

    static func load(from directory: URL) throws(T5Error) -> Study? {
        let url = directory.appendingPathComponent(file)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do {
            let study = try JSONDecoder().decode(Study.self, from: Data(contentsOf: url))
            if study.version != version {
                throw T5Error.invalidConfig(path: url.path, reason: "study version \(study.version), this t5 writes \(version)")
            }
            return study
        } catch let error as T5Error {
            throw error
        } catch {
            throw .corruptCheckpoint(path: url.path, reason: "\(error)")
        }
    }

    func save(in directory: URL) throws(T5Error) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do { data = try encoder.encode(self) } catch {
            throw .writeFailed(path: directory.appendingPathComponent(Self.file).path, reason: "\(error)")
        }
        try AtomicFile.write(data + Data("\n".utf8), to: directory.appendingPathComponent(Self.file))
    }

    /// The first setting that differs from `current`, as "NAME: was X, now Y".
    static func firstDifference(saved: [[String]], current: [[String]]) -> String? {
        let old = Dictionary(saved.map { ($0[0], $0[1]) }, uniquingKeysWith: { a, _ in a })
        let new = Dictionary(current.map { ($0[0], $0[1]) }, uniquingKeysWith: { a, _ in a })
        for pair in current where old[pair[0]] != pair[1] {
            return "\(pair[0]) was \(old[pair[0]].map { $0.debugDescription } ?? "not set"), now \(pair[1].debugDescription)"
        }
        for pair in saved where new[pair[0]] == nil {
            return "\(pair[0]) was \(pair[1].debugDescription), now not set"
        }
        return nil
    }
}
