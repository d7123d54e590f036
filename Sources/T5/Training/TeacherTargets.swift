import Foundation

/// Sequence-level knowledge distillation (Kim & Rush 2016, "Sequence-Level Knowledge Distillation"; the
/// pseudo-label path of Shleifer & Rush 2020): the teacher's beam-search output for every training input
/// replaces its target, and the student is trained on those.
///
/// The outputs are generated once and kept in a cache file (`OUT/teacher-targets.jsonl` for `t5 distill`):
/// a header line naming the teacher, the beam width, the length limit and a fingerprint of the inputs, then
/// one line per example (`{"task": t, "ids": [...]}`, tasks in order). A run with the same header reuses it;
/// anything else regenerates it.
public enum TeacherTargets {
    public static let fileName = "teacher-targets.jsonl"

    /// `data` with every target replaced by `teacher`'s output for its input: beam search `beams` wide from
    /// the teacher's generation defaults, at most `maxTargetTokens` tokens ending with eos (an output that
    /// reached the limit is cut to its first N-1 tokens and eos, as target truncation is). Inputs go
    /// `batchSize` at a time; `progress(done, total)` follows them. With `cache`, a matching file is read
    /// instead (`reused` true), and a generated set is written there (atomically).
    public static func replacing(
        _ data: TrainingData, teacher: T5Model, teacherName: String, beams: Int, maxTargetTokens: Int, batchSize: Int,
        cache: URL?, progress: (Int, Int) -> Void = { _, _ in }
    ) throws(T5Error) -> (data: TrainingData, reused: Bool) {
        guard beams >= 1 else { throw .invalidOption(name: "TeacherTargets.beams", reason: "must be at least 1, got \(beams)") }
        guard maxTargetTokens >= 2 else {
            throw .invalidOption(name: "TeacherTargets.maxTargetTokens", reason: "must be at least 2 (a token and </s>), got \(maxTargetTokens)")
        }
        let inputs = data.tasks.map { $0.examples.map(\.inputIDs) }
        var header = JSONObject()
        header["teacher"] = .string(teacherName)
        header["beams"] = .integer(beams)
        header["max_target_tokens"] = .integer(maxTargetTokens)
        header["inputs"] = .string(RunSignature.fingerprint(inputs.flatMap { $0 }.map { TokenizedExample(inputIDs: $0, targetIDs: []) }))
        header["examples"] = .integer(inputs.reduce(0) { $0 + $1.count })

        var targets: [[[Int]]]
        var reused = false
        if let cache, let cached = read(cache, header: header, counts: inputs.map(\.count)) {
            targets = cached
            reused = true
        } else {
            targets = try generate(inputs, teacher: teacher, beams: beams, maxTargetTokens: maxTargetTokens,
                                   batchSize: max(1, batchSize), progress: progress)
            if let cache { try write(targets, header: header, to: cache) }
        }
        let tasks = zip(data.tasks, targets).map { task, outputs in
            TaskData(source: task.source, examples: zip(task.examples, outputs).map { TokenizedExample(inputIDs: $0.inputIDs, targetIDs: $1) })
        }
        return (try TrainingData(tasks: tasks, weights: data.rates), reused)
    }

    private static func generate(
        _ inputs: [[[Int]]], teacher: T5Model, beams: Int, maxTargetTokens: Int, batchSize: Int, progress: (Int, Int) -> Void
    ) throws(T5Error) -> [[[Int]]] {
        var options = GenerationOptions(for: teacher)
        options.numBeams = beams
        options.numReturnSequences = 1
        options.maxNewTokens = maxTargetTokens
        options.minNewTokens = min(options.minNewTokens, maxTargetTokens)
        let eos = teacher.config.eosTokenID
        let total = inputs.reduce(0) { $0 + $1.count }
        var done = 0
        var out = [[[Int]]]()
        for task in inputs {
            var outputs = [[Int]]()
            var start = 0
            while start < task.count {
                let batch = Array(task[start..<min(start + batchSize, task.count)])
                for sequences in try teacher.generate(ids: batch, options: options) {
                    var ids = sequences.first?.ids ?? []
                    if ids.last != eos {
                        if ids.count >= maxTargetTokens { ids = Array(ids.prefix(maxTargetTokens - 1)) }
                        ids.append(eos)
                    }
                    outputs.append(ids)
                }
                start += batch.count
                done += batch.count
                progress(done, total)
            }
            out.append(outputs)
        }
        return out
    }

    /// The cached targets when the file's header is `header` and it holds `counts[t]` lines of each task, in order.
    private static func read(_ url: URL, header: JSONObject, counts: [Int]) -> [[[Int]]]? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        let lines = data.split(separator: UInt8(ascii: "\n"))
        guard let first = lines.first, case .object(let saved)? = try? JSONParser.parse(Data(first)), saved == header else { return nil }
        var targets = counts.map { _ in [[Int]]() }
        for line in lines.dropFirst() {
            guard case .object(let entry)? = try? JSONParser.parse(Data(line)),
                  case .integer(let t)? = entry["task"], t >= 0 && t < counts.count,
                  case .array(let values)? = entry["ids"] else { return nil }
            var ids = [Int]()
            for value in values {
                guard case .integer(let id) = value else { return nil }
                ids.append(id)
            }
            guard targets[t].count < counts[t], (0..<t).allSatisfy({ targets[$0].count == counts[$0] }) else { return nil }
            targets[t].append(ids)
        }
        return zip(targets, counts).allSatisfy { $0.count == $1 } ? targets : nil
    }

    private static func write(_ targets: [[[Int]]], header: JSONObject, to url: URL) throws(T5Error) {
        var bytes = JSONWriter.serialize(.object(header), style: .compact)
        bytes.append(UInt8(ascii: "\n"))
        for (t, outputs) in targets.enumerated() {
            for ids in outputs {
                bytes += JSONWriter.serialize(.object(JSONObject([("task", .integer(t)), ("ids", .array(ids.map { .integer($0) }))])), style: .compact)
                bytes.append(UInt8(ascii: "\n"))
            }
        }
        try AtomicFile.write(Data(bytes), to: url)
    }
}
