import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The files of a training output directory.
///
/// ```
/// OUT/config.json, model.safetensors, spiece.model, generation_config.json   the latest model (HF layout;
///                                                                   ByT5: tokenizer_config.json, ...)
/// OUT/checkpoint-N/   the same four files at step N, plus
///                     optimizer.safetensors (moments) and trainer_state.json (step, data position, seed)
/// OUT/metrics.jsonl   the metrics log
/// ```
///
/// Crash safety: a checkpoint is written into a hidden temporary directory and renamed to
/// `checkpoint-N` only when complete, so a `checkpoint-N` directory is always whole; the top-level
/// files are then replaced one by one, each atomically (hard links to the checkpoint's files,
/// renamed into place). Killing the process at any moment leaves the previous complete
/// checkpoint and a loadable top-level model. Older checkpoints are deleted after the new one is in place.
public enum Checkpoint {
    public static let optimizerFile = "optimizer.safetensors"
    public static let stateFile = "trainer_state.json"
    /// The Hugging Face files of a model directory besides the tokenizer's (`Tokenizer.files`).
    public static let modelFiles = ["config.json", "model.safetensors", "generation_config.json"]
    static let directoryPrefix = "checkpoint-"

    /// What a checkpoint writes besides the weights: the config (with any changes), tokenizer and generation
    /// config. The model directory's writer is `ModelDirectory`'s.
    public typealias ModelFiles = ModelDirectory

    /// Writes a model directory in the Hugging Face layout through `ModelDirectory.write(weights:specs:to:)`:
    /// config.json, model.safetensors (fp32; a tied LM head is not stored, as `save_pretrained` drops tied
    /// duplicates), the tokenizer's files and generation_config.json. Each file is replaced atomically.
    public static func writeModel(_ values: [String: Tensor], specs: [ParameterSpec], files: ModelDirectory, to directory: URL, metadata: [String: String] = [:]) throws(T5Error) {
        try files.write(weights: values, specs: specs, to: directory, metadata: metadata)
    }

    /// `writeModel` for the fp32 weights of `model` (a student made from a teacher, for instance).
    public static func writeModel(_ model: T5Model, files: ModelDirectory, to directory: URL) throws(T5Error) {
        let specs = T5Parameters.specs(for: model.config, separateLMHead: model.hasSeparateLMHead)
        try writeModel(model.weights.byKey(config: model.config, separateLMHead: model.hasSeparateLMHead), specs: specs,
                       files: files, to: directory)
    }

    /// Saves a complete checkpoint for `state.step` in `output`, then points the top-level model at it
    /// and removes older checkpoints. Returns the checkpoint directory.
    @discardableResult
    public static func save(
        values: [String: Tensor], specs: [ParameterSpec], files: ModelDirectory,
        optimizerState: [String: Tensor], state: TrainingState, in output: URL
    ) throws(T5Error) -> URL {
        try createDirectory(output)
        let final = output.appendingPathComponent("\(directoryPrefix)\(state.step)")
        let temporary = output.appendingPathComponent(".\(directoryPrefix)\(state.step).tmp-\(getpid())")
        removeItem(temporary)
        try createDirectory(temporary)
        do {
            try writeModel(values, specs: specs, files: files, to: temporary, metadata: ["step": "\(state.step)"])
            try SafeTensorsWriter.write(optimizerState, to: temporary.appendingPathComponent(optimizerFile), metadata: ["step": "\(state.step)"])
            try AtomicFile.write(state.jsonData(), to: temporary.appendingPathComponent(stateFile))
            syncDirectory(temporary)
            // Re-saving a step (a resumed run that saves where it started) replaces the old copy.
            if FileManager.default.fileExists(atPath: final.path) {
                let old = output.appendingPathComponent(".\(directoryPrefix)\(state.step).old-\(getpid())")
                try rename(final, old)
                removeItem(old)
            }
            try rename(temporary, final)
            syncDirectory(output)
        } catch {
            removeItem(temporary)
            throw error
        }
        for name in modelFiles + files.tokenizerFiles.keys.sorted() {
            try linkOrCopy(final.appendingPathComponent(name), to: output.appendingPathComponent(name))
        }
        for (step, url) in checkpoints(in: output) where step != state.step {
            removeItem(url)
        }
        removeStaleTemporaries(in: output)
        return final
    }

    /// Complete checkpoints in `output`, newest last.
    public static func checkpoints(in output: URL) -> [(step: Int, url: URL)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: output.path)) ?? []
        return names.compactMap { name -> (Int, URL)? in
            guard name.hasPrefix(directoryPrefix), let step = Int(name.dropFirst(directoryPrefix.count)), step >= 0 else { return nil }
            let url = output.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.appendingPathComponent(stateFile).path) else { return nil }
            return (step, url)
        }.sorted { $0.0 < $1.0 }
    }

    /// The newest complete checkpoint in `output`, or nil.
    public static func latest(in output: URL) -> URL? {
        checkpoints(in: output).last?.url
    }

    /// Reads a checkpoint directory's training state and optimizer moments.
    public static func loadState(from checkpoint: URL) throws(T5Error) -> (state: TrainingState, optimizer: [String: Tensor]) {
        let stateURL = checkpoint.appendingPathComponent(stateFile)
        let data: Data
        do {
            data = try Data(contentsOf: stateURL)
        } catch {
            throw .unreadableFile(path: stateURL.path, reason: error.localizedDescription)
        }
        let state = try TrainingState.decode(data, path: stateURL.path)
        let optimizerURL = checkpoint.appendingPathComponent(optimizerFile)
        guard FileManager.default.fileExists(atPath: optimizerURL.path) else { throw .missingFile(path: optimizerURL.path) }
        let archive = try SafeTensorsArchive(file: optimizerURL)
        var tensors = [String: Tensor]()
        for key in archive.keys { tensors[key] = try archive.tensor(key) }
        return (state, tensors)
    }

    /// True for the names of a save's temporaries (`.checkpoint-N.tmp-PID`, `.old-PID`, `.NAME.tmp-…`).
    /// Matched exactly, digits included, so that a user's own dot-file is never taken for one and deleted.
    public static func isTemporary(_ name: String) -> Bool {
        guard name.hasPrefix("."), let marker = name.range(of: ".tmp-", options: .backwards) ?? name.range(of: ".old-", options: .backwards) else {
            return false
        }
        let stem = name[name.index(after: name.startIndex)..<marker.lowerBound]
        let tail = name[marker.upperBound...]
        func digits(_ s: Substring) -> Bool { !s.isEmpty && s.allSatisfy(\.isASCII) && s.allSatisfy(\.isNumber) }
        if stem.hasPrefix(directoryPrefix) {
            // .checkpoint-N.tmp-PID, .checkpoint-N.old-PID
            return digits(stem.dropFirst(directoryPrefix.count)) && digits(tail)
        }
        // AtomicFile's .NAME.tmp-PID-RANDOM and the link step's .NAME.tmp-link-PID
        guard name[marker] == ".tmp-", !stem.isEmpty else { return false }
        let parts = tail.split(separator: "-", omittingEmptySubsequences: false)
        return (parts.count == 2 && digits(parts[0]) && digits(parts[1])) || (parts.count == 2 && parts[0] == "link" && digits(parts[1]))
    }

    /// Leftovers of a save that was interrupted (`.checkpoint-N.tmp-PID`, `.old-PID`, `.NAME.tmp-…`).
    static func removeStaleTemporaries(in output: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: output.path)) ?? []
        for name in names where isTemporary(name) {
            removeItem(output.appendingPathComponent(name))
        }
    }

    // MARK: - File system steps

    static func createDirectory(_ url: URL) throws(T5Error) {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw .writeFailed(path: url.path, reason: "cannot create the directory: \(error.localizedDescription)")
        }
    }

    private static func rename(_ from: URL, _ to: URL) throws(T5Error) {
        guard posixRename(from.path, to.path) == 0 else {
            throw .writeFailed(path: to.path, reason: "cannot rename \(from.lastPathComponent): \(String(cString: strerror(errno)))")
        }
    }

    private static func removeItem(_ url: URL) {
        try? FileManager.default.removeItem(at: url)
    }

    /// Makes renames inside `directory` durable (best effort, like `AtomicFile`).
    private static func syncDirectory(_ directory: URL) {
        let fd = open(directory.path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }

    /// Atomically replaces `destination` with `source`'s content: a hard link under a temporary name
    /// renamed over it (no copy, no second write of the weights), or an atomic copy where links fail.
    private static func linkOrCopy(_ source: URL, to destination: URL) throws(T5Error) {
        let temporary = destination.deletingLastPathComponent()
            .appendingPathComponent(".\(destination.lastPathComponent).tmp-link-\(getpid())")
        unlink(temporary.path)
        if link(source.path, temporary.path) == 0 {
            if posixRename(temporary.path, destination.path) == 0 { return }
            unlink(temporary.path)
        }
        let data: Data
        do {
            data = try Data(contentsOf: source, options: .alwaysMapped)
        } catch {
            throw .unreadableFile(path: source.path, reason: error.localizedDescription)
        }
        try AtomicFile.write(data, to: destination)
    }
}

/// The C `rename(2)`, named so it does not collide with `Checkpoint.rename`.
private func posixRename(_ from: String, _ to: String) -> Int32 {
    #if canImport(Glibc)
    return Glibc.rename(from, to)
    #elseif canImport(Musl)
    return Musl.rename(from, to)
    #else
    return Darwin.rename(from, to)
    #endif
}
