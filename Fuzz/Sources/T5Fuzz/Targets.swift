import Foundation
@testable import T5

/// One libFuzzer target: bytes in, the runtime's parser called the way the runtime calls it. A thrown
/// `T5Error` is a correct answer (its message is built, as the CLI prints it); a trap, a sanitizer report or a
/// failed `check` is a bug.
struct FuzzTarget: Sendable {
    let name: String
    let run: @Sendable (UnsafeRawBufferPointer) -> Void

    static let all: [FuzzTarget] = [
        FuzzTarget(name: "safetensors", run: safetensors),
        FuzzTarget(name: "safetensors-index", run: safetensorsIndex),
        FuzzTarget(name: "json", run: json),
        FuzzTarget(name: "config", run: config),
        FuzzTarget(name: "generation-config", run: generationConfig),
        FuzzTarget(name: "spiece", run: spiece),
        FuzzTarget(name: "tokenizer", run: tokenizer),
        FuzzTarget(name: "tokenizer-json", run: tokenizerJSON),
        FuzzTarget(name: "dataset", run: dataset),
        FuzzTarget(name: "trainer-state", run: trainerState),
        FuzzTarget(name: "corpus", run: corpus),
        FuzzTarget(name: "model-card", run: modelCard),
    ]
}

/// A property the parser promises; its failure is a bug the fuzzer reports like a crash.
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() {
        printError("T5Fuzz check failed: \(message())")
        abort()
    }
}

/// Builds the line the CLI would print for `error`, so message formatting is fuzzed too; prints it when
/// `T5_FUZZ_VERBOSE` is set (to see what the seeds reach: `T5_FUZZ_VERBOSE=1 T5Fuzz -runs=0 SEEDS`).
func report(_ error: T5Error) {
    refused(error.description)
}

func refused(_ message: String) {
    if verbose { printError("refused: \(message)") }
}

let verbose = getenv("T5_FUZZ_VERBOSE") != nil

/// A scratch directory of this process, made once (`TMPDIR` or /tmp), for the APIs that take a path.
let scratch: URL = {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("t5-fuzz-\(getpid())")
    try? FileManager.default.removeItem(at: url)
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(at: scratch) }
    return url
}()

func write(_ bytes: UnsafeRawBufferPointer, to url: URL) {
    try! Data(bytes).write(to: url)
}

// MARK: - safetensors

/// The header parser on the bytes of a whole file, in memory (as `SafeTensorsArchive` sees its mapping). When
/// it accepts, every guarantee `tensor(_:)` relies on is checked, and the file is opened and every tensor read
/// through the archive, as model loading does.
@Sendable func safetensors(_ bytes: UnsafeRawBufferPointer) {
    let header: SafeTensorsHeader
    do {
        header = try SafeTensorsHeader(bytes: bytes, path: "model.safetensors")
    } catch {
        report(error)
        return
    }
    check(header.dataStart >= 8 && header.dataStart <= bytes.count, "data section starts at \(header.dataStart) of \(bytes.count)")
    for (name, entry) in header.entries {
        check(entry.begin >= 0 && entry.begin <= entry.end && header.dataStart + entry.end <= bytes.count,
              "tensor \(name) [\(entry.begin), \(entry.end)] outside the \(bytes.count - header.dataStart)-byte data section")
        let (bits, overflow) = entry.elementCount.multipliedReportingOverflow(by: entry.dtype.bitWidth)
        check(!overflow && bits / 8 == entry.end - entry.begin, "tensor \(name) \(entry.shape) \(entry.dtype) has \(entry.end - entry.begin) bytes")
    }
    let url = scratch.appendingPathComponent("model.safetensors")
    write(bytes, to: url)
    do {
        let archive = try SafeTensorsArchive(file: url)
        check(Set(archive.keys) == Set(header.entries.keys), "the archive's keys differ from the header's")
        var sum: Float = 0
        for key in archive.keys {
            _ = archive.info(key)
            do {
                let tensor = try archive.tensor(key)
                check(tensor.shape == header.entries[key]!.shape, "tensor \(key) came back with shape \(tensor.shape)")
                for value in tensor.array.prefix(8) { sum += value }
            } catch {
                report(error)  // dtypes that are not F32, F16 or BF16
            }
        }
        blackHole(sum)
    } catch {
        check(false, "the archive refused what the header parser accepted: \(error)")
    }
}

/// The bytes as `model.safetensors.index.json` of a directory holding two real shards, opened the way
/// `T5Model(directory:)` opens weights.
@Sendable func safetensorsIndex(_ bytes: UnsafeRawBufferPointer) {
    let directory = indexDirectory
    write(bytes, to: directory.appendingPathComponent("model.safetensors.index.json"))
    do {
        let archive = try SafeTensorsArchive(directory: directory)
        for url in archive.fileURLs {
            check(url.deletingLastPathComponent().standardizedFileURL.path == directory.standardizedFileURL.path,
                  "a shard outside the model directory was opened: \(url.path)")
        }
        for key in archive.keys {
            do { blackHole(try archive.tensor(key).shape.count) } catch { report(error) }
        }
    } catch {
        report(error)
    }
}

/// A directory with the shards of Tests/Fixtures/safetensors/sharded (found from this source file's path).
let indexDirectory: URL = {
    let directory = scratch.appendingPathComponent("sharded")
    try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../Tests/Fixtures/safetensors/sharded").standardizedFileURL
    for name in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] {
        try! FileManager.default.copyItem(at: fixtures.appendingPathComponent(name), to: directory.appendingPathComponent(name))
    }
    return directory
}()

// MARK: - JSON

/// The JSON parser in both modes. What it accepts is written back by `JSONWriter` (config.json, safetensors
/// headers are written that way) and must parse again to the same text.
@Sendable func json(_ bytes: UnsafeRawBufferPointer) {
    for allowNonFinite in [false, true] {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes, allowNonFinite: allowNonFinite)
        } catch {
            refused(error.description)
            continue
        }
        for style in [JSONWriter.Style.compact, .pythonIndented] {
            let text = JSONWriter.serialize(value, style: style)
            do {
                let again = try JSONParser.parse(Data(text), allowNonFinite: true)
                check(JSONWriter.serialize(again, style: style) == text, "\(style) output does not read back to itself")
            } catch {
                check(false, "\(style) output is not JSON: \(error.description)")
            }
        }
    }
}

/// config.json as `T5Config.load` reads it, then written back as a checkpoint save does.
@Sendable func config(_ bytes: UnsafeRawBufferPointer) {
    do {
        let config = try T5Config(json: Data(bytes), path: "config.json")
        blackHole(config.parameterCount(separateLMHead: true))
        blackHole(config.jsonData(updating: ["dropout_rate": .number(0.1)]).count)
    } catch {
        report(error)
    }
}

/// generation_config.json as model loading reads it: parsed and range-checked, ids checked against a
/// vocabulary, and the options it gives validated.
@Sendable func generationConfig(_ bytes: UnsafeRawBufferPointer) {
    do {
        let config = try GenerationConfig(json: Data(bytes), path: "generation_config.json")
        try config.validate(vocabSize: 32128, path: "generation_config.json")
        try config.options(over: GenerationOptions()).validate()
    } catch {
        report(error)
    }
}

// MARK: - SentencePiece

/// The protobuf wire reader of `spiece.model` alone (the tokenizer reaches it only for models the C++
/// library accepts first), then the precompiled charsmap it finds, applied to text.
@Sendable func spiece(_ bytes: UnsafeRawBufferPointer) {
    let model: SentencePieceModel
    do {
        model = try SentencePieceModel(bytes: [UInt8](bytes))
    } catch {
        refused(error.reason)
        return
    }
    guard !model.precompiledCharsmap.isEmpty else { return }
    do {
        let normalizer = try PrecompiledNormalizer(charsmap: model.precompiledCharsmap)
        for text in sampleTexts + model.pieces.prefix(16).map(\.text) {
            blackHole(normalizer.normalize(text[...]).utf8.count)
        }
    } catch {
        refused(error.reason)
    }
}

/// A whole tokenizer load, as `T5Tokenizer(modelFile:)` does it (SentencePiece's C++ loader, then the wire
/// reader, the layout checks, the normalizer and the vocabulary), then encoding and decoding.
@Sendable func tokenizer(_ bytes: UnsafeRawBufferPointer) {
    let tokenizer: T5Tokenizer
    do {
        tokenizer = try T5Tokenizer(modelBytes: [UInt8](bytes), path: "spiece.model")
    } catch {
        report(error)
        return
    }
    for text in sampleTexts {
        let ids = tokenizer.encode(text)
        check(ids.allSatisfy { (0..<tokenizer.size).contains($0) }, "encode gave an id outside 0..<\(tokenizer.size)")
        blackHole(tokenizer.decode(ids).count)
    }
    blackHole(tokenizer.decode([0, 1, 2, tokenizer.size - 1, tokenizer.size, -1, Int.max]).count)
    blackHole(tokenizer.pieces(Array(0..<min(tokenizer.size, 64))).count)
}

/// transformers' tokenizer.json as a directory without spiece.model loads it (`FastTokenizerFile`: the JSON, the
/// shape checks, the base64 charsmap, the added tokens), then encoding and decoding.
@Sendable func tokenizerJSON(_ bytes: UnsafeRawBufferPointer) {
    let url = scratch.appendingPathComponent("tokenizer.json")
    write(bytes, to: url)
    let tokenizer: T5Tokenizer
    do {
        tokenizer = try T5Tokenizer(tokenizerJSON: url)
    } catch {
        report(error)
        return
    }
    check(tokenizer.size == tokenizer.sentencePieceSize + tokenizer.sentinelCount, "size \(tokenizer.size) is not the pieces plus the sentinels")
    for text in sampleTexts {
        let ids = tokenizer.encode(text)
        check(ids.allSatisfy { (0..<tokenizer.size).contains($0) }, "encode gave an id outside 0..<\(tokenizer.size)")
        blackHole(tokenizer.decode(ids).count)
    }
    blackHole(tokenizer.decode([0, 1, 2, tokenizer.size - 1, tokenizer.size, -1, Int.max]).count)
    blackHole(tokenizer.pieces(Array(0..<min(tokenizer.size, 64))).count)
}

let sampleTexts = [
    "translate English to German: The house is wonderful.", "  a\u{3000}b\t\tc  ", "ﬁ\u{301} e\u{301}\u{301} ＜/s＞ </s><extra_id_0>",
    "한국어 텍스트 \u{1100}\u{1161}\u{11A8}", "🙂👍🏽 \u{0}\u{7F} \u{FEFF}", "▁▁x▁", "",
]

// MARK: - Training data

/// A training data file as `DataFile(path:)` reads it: sniffed from the content, and as each named format.
@Sendable func dataset(_ bytes: UnsafeRawBufferPointer) {
    let data = [UInt8](bytes)
    for (path, format) in [("train", nil), ("train.jsonl", DataFormat.jsonLines), ("train.tsv", .tsv)] as [(String, DataFormat?)] {
        do {
            let file = try DataFile(bytes: data, path: path, format: format)
            check(!file.examples.isEmpty, "a data file without examples was accepted")
            check(file.examples.allSatisfy { $0.line >= 1 }, "an example without its line")
        } catch {
            report(error)
        }
    }
}

/// A corpus file as `t5 pretrain --text` streams it (written to a file: the reader works on files, through
/// its fixed buffer), as blank-line text, one document per line and JSON Lines, gzip-compressed when the bytes
/// start with its magic number.
@Sendable func corpus(_ bytes: UnsafeRawBufferPointer) {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("t5fuzz-corpus-\(getpid())").path
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { return }
    defer { unlink(path) }
    for format in [CorpusFormat.text(onePerLine: false), .text(onePerLine: true), .jsonLines] {
        do {
            let reader = try CorpusReader(path: path, format: format)
            var previous = (offset: -1, line: 0)
            while let d = try reader.next() {
                check(d.offset > previous.offset && d.line > previous.line, "documents out of order")
                if format != .jsonLines { check(!TextFile.isBlank(d.text), "a blank text document") }
                previous = (d.offset, d.line)
            }
        } catch {
            report(error)
        }
    }
}

/// trainer_state.json as `--resume` reads it: decoded, validated against a run, then the batch sampler placed
/// at its data position and one optimizer step's bookkeeping done (Trainer.swift, `step()`), which a state
/// that validates must survive.
@Sendable func trainerState(_ bytes: UnsafeRawBufferPointer) {
    let state: TrainingState
    do {
        state = try TrainingState.decode(Data(bytes), path: "trainer_state.json")
    } catch {
        report(error)
        return
    }
    for (data, batchSize, poolBatches, accumulation) in runs {
        let effective = BatchSampler.effectivePoolBatches(poolBatches, data: data, batchSize: batchSize)
        do {
            try state.validate(path: "trainer_state.json", taskCount: data.tasks.count, batchSize: batchSize,
                               poolBatches: effective, gradientAccumulation: accumulation)
        } catch {
            report(error)
            continue
        }
        var sampler = BatchSampler(data: data, batchSize: batchSize, seed: state.seed, poolBatches: poolBatches, position: state.position)
        var next = state
        var examples = 0, tokens = 0
        for _ in 0..<accumulation {
            let batch: TrainingBatch
            do {
                batch = try sampler.next()
            } catch {
                check(false, "a sampler over examples in memory threw: \(error)")
                return
            }
            examples += batch.inputIDs.count
            tokens += batch.inputIDs.reduce(0) { $0 + $1.count } + batch.targetIDs.reduce(0) { $0 + $1.count }
        }
        next.step += 1
        next.position = sampler.position
        next.examplesSeen += examples
        next.tokensSeen += tokens
        blackHole(next.jsonData().count)
    }
}

/// (data, batch size, pool batches, gradient accumulation) of the runs a state is resumed into.
let runs: [(TrainingData, Int, Int, Int)] = {
    func task(_ name: String, _ lengths: [Int]) -> TaskData {
        TaskData(source: TaskSource(path: name), examples: lengths.map {
            TokenizedExample(inputIDs: Array(repeating: 5, count: $0) + [1], targetIDs: [6, 1])
        })
    }
    let one = try! TrainingData(tasks: [task("a.jsonl", [3, 1, 4, 1, 5, 9, 2, 6])])
    let two = try! TrainingData(tasks: [task("a.jsonl", [3, 1, 4]), task("b.tsv", [1, 5, 9, 2, 6])], weights: [1, 3])
    return [(one, 2, 50, 1), (one, 1, 2, 3), (two, 2, 50, 2), (two, 3, 1, 1)]
}()

@inline(never) func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

/// A model directory's README.md, as `t5 info` reads it (its first 64 KiB, UTF-8 or nothing).
@Sendable func modelCard(_ bytes: UnsafeRawBufferPointer) {
    guard let text = String(bytes: Data(bytes), encoding: .utf8), let card = ModelCard(markdown: text) else { return }
    check(!card.summary.isEmpty && !card.summary.contains("\n"), "a summary that is empty or spans lines")
}
