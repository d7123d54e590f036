import Foundation
import Testing
@testable import T5

// Reference data comes from tools/make_safetensors_fixtures.py (the Python safetensors library
// and numpy), never from this project's writer.

private let fixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/safetensors")

private struct Expected: Decodable {
    struct TensorValues: Decodable {
        let dtype: String
        let shape: [Int]
        let bits: [UInt32]?
    }
    struct File: Decodable {
        let metadata: [String: String]?
        let tensors: [String: TensorValues]
    }
    struct Input: Decodable {
        let shape: [Int]
        let bits: [UInt32]
    }
    struct WriterReference: Decodable {
        let file: String
        let metadata: [String: String]
        let inputs: [String: Input]
    }
    struct Rounding: Decodable {
        let inputs: [UInt32]
        let f16: [UInt16]
        let bf16: [UInt16]
    }
    let files: [String: File]
    let writer_reference: [String: WriterReference]
    let rounding: Rounding

    static let shared: Expected = {
        // Tests may crash on a broken fixture: it is a bug in the test setup, not a finding.
        let data = try! Data(contentsOf: fixtures.appendingPathComponent("expected.json"))
        return try! JSONDecoder().decode(Expected.self, from: data)
    }()
}

/// A fresh temporary directory, removed by the caller's `defer`.
private func makeTemporaryDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("t5-io-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

private func bits(_ tensor: Tensor) -> [UInt32] { tensor.array.map(\.bitPattern) }

private func tensor(_ input: Expected.Input) -> Tensor {
    Tensor(shape: input.shape, values: input.bits.map(Float.init(bitPattern:)))
}

/// The T5Error `body` throws, or nil if it succeeds.
private func openError(_ body: () throws -> Void) -> T5Error? {
    do {
        try body()
        return nil
    } catch let error as T5Error {
        return error
    } catch {
        Issue.record("not a T5Error: \(error)")
        return nil
    }
}

/// A safetensors file from a header text and data; `pad` pads like the Python writer.
private func safetensorsBytes(_ header: String, _ data: [UInt8], pad: Bool = true, declaredLength: UInt64? = nil) -> [UInt8] {
    var h = Array(header.utf8)
    if pad { h += Array(repeating: UInt8(ascii: " "), count: (8 - h.count % 8) % 8) }
    return safetensorsBytes(headerBytes: h, data, declaredLength: declaredLength)
}

private func safetensorsBytes(headerBytes h: [UInt8], _ data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
    withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { Array($0) } + h + data
}

@Suite struct SafeTensorsReaderTests {
    @Test(arguments: ["f32.safetensors", "f16.safetensors", "bf16.safetensors", "mixed.safetensors",
                      "unaligned.safetensors", "unpadded.safetensors"])
    func readsPythonWrittenFile(name: String) throws {
        let expected = try #require(Expected.shared.files[name])
        let archive = try SafeTensorsArchive(file: fixtures.appendingPathComponent(name))
        #expect(archive.keys == expected.tensors.keys.sorted())
        #expect(archive.metadata == (expected.metadata ?? [:]))
        for (key, values) in expected.tensors {
            #expect(archive.info(key) == TensorInfo(dtype: values.dtype, shape: values.shape))
            if let want = values.bits {
                let t = try archive.tensor(key)
                #expect(t.shape == values.shape)
                #expect(bits(t) == want, "\(name) \(key)")
            }
        }
    }

    @Test func otherDTypesAreListedButNotConverted() throws {
        let archive = try SafeTensorsArchive(file: fixtures.appendingPathComponent("mixed.safetensors"))
        #expect(archive.info("m.int") == TensorInfo(dtype: "I32", shape: [2, 3]))
        #expect(archive.info("m.byte") == TensorInfo(dtype: "U8", shape: [5]))
        #expect(openError { _ = try archive.tensor("m.int") } == .unsupportedDType(key: "m.int", dtype: "I32"))
        #expect(openError { _ = try archive.tensor("m.byte") } == .unsupportedDType(key: "m.byte", dtype: "U8"))
        #expect(openError { _ = try archive.tensor("nope") } == .missingTensors(path: archive.path, keys: ["nope"]))
        #expect(archive.info("nope") == nil)
    }

    @Test func alignedF32IsAViewOfTheMapping() throws {
        let archive = try SafeTensorsArchive(file: fixtures.appendingPathComponent("f32.safetensors"))
        for key in archive.keys {
            let t = try archive.tensor(key)
            let mapping = try #require(archive.mapping(of: key))
            if t.count > 0 { #expect(mapping.contains(t.pointer), "\(key) was copied") }
            // Two requests see the same memory: nothing is duplicated.
            #expect(try archive.tensor(key).pointer == t.pointer)
        }
    }

    @Test func misalignedF32AndHalfTypesAreCopies() throws {
        let unaligned = try SafeTensorsArchive(file: fixtures.appendingPathComponent("unaligned.safetensors"))
        let t = try unaligned.tensor("b.float")
        #expect(Int(bitPattern: t.pointer) % 4 == 0)
        #expect(try #require(unaligned.mapping(of: "b.float")).contains(t.pointer) == false)
        let half = try SafeTensorsArchive(file: fixtures.appendingPathComponent("f16.safetensors"))
        let h = try half.tensor("half.matrix")
        #expect(try #require(half.mapping(of: "half.matrix")).contains(h.pointer) == false)
    }

    @Test func writingThroughAViewNeverTouchesTheFile() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("w.safetensors")
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("f32.safetensors"), to: file)
        let before = try Data(contentsOf: file)
        let archive = try SafeTensorsArchive(file: file)
        let t = try archive.tensor("encoder.weight")
        for i in 0..<t.count { t.pointer[i] = 42 }
        #expect(try archive.tensor("encoder.weight").array.allSatisfy { $0 == 42 })  // same private pages
        #expect(try Data(contentsOf: file) == before)
        #expect(try SafeTensorsArchive(file: file).tensor("encoder.weight").array.allSatisfy { $0 != 42 })
    }

    @Test func acceptsWhatPythonAccepts() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let six = (0..<6).flatMap { withUnsafeBytes(of: Float($0).bitPattern.littleEndian) { Array($0) } }
        let entry = #""a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}"#
        let cases: [(String, [UInt8], [String])] = [
            ("leading and trailing whitespace", safetensorsBytes(" \n{\(entry)}\t\r\n", six), ["a"]),
            ("no metadata, unpadded", safetensorsBytes("{\(entry)}", six, pad: false), ["a"]),
            ("null metadata", safetensorsBytes(#"{"__metadata__":null,\#(entry)}"#, six), ["a"]),
            ("extra entry fields", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24],"x":1}}"#, six), ["a"]),
            ("duplicate keys, last wins", safetensorsBytes(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},\#(entry)}"#, six), ["a"]),
            ("zero-size tensors and a scalar",
             safetensorsBytes(#"{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#, Array(six[4..<8])),
             ["e", "s", "z"]),
            ("empty header", safetensorsBytes("{}", []), []),
            ("exotic dtypes", safetensorsBytes(#"{"f8":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]},"f4":{"dtype":"F4","shape":[4],"data_offsets":[2,4]}}"#, [1, 2, 3, 4]), ["f4", "f8"]),
        ]
        for (name, bytes, keys) in cases {
            let file = dir.appendingPathComponent("ok.safetensors")
            try Data(bytes).write(to: file)
            let archive = try SafeTensorsArchive(file: file)
            #expect(archive.keys == keys, "\(name)")
            if keys == ["a"] { #expect(try archive.tensor("a").array == [0, 1, 2, 3, 4, 5], "\(name)") }
            if keys == ["e", "s", "z"] {
                #expect(try archive.tensor("s").array == [1])
                #expect(try archive.tensor("e").shape == [0, 3])
            }
            if keys == ["f4", "f8"] { #expect(archive.info("f8") == TensorInfo(dtype: "F8_E4M3", shape: [2])) }
        }
    }

    @Test func rejectsCorruptFiles() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let valid = try [UInt8](Data(contentsOf: fixtures.appendingPathComponent("f32.safetensors")))
        let n = Int(valid.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let validHeader = Array(valid[8..<(8 + n)])
        let data = (0..<30).map { UInt8($0) }  // bytes for a = F32[2,3] (24) and b = F16[3] (6)
        func two(_ a: String, _ b: String = #"{"dtype":"F16","shape":[3],"data_offsets":[24,30]}"#) -> String {
            #"{"__metadata__":{"format":"pt"},"a":\#(a),"b":\#(b)}"#
        }
        let a = #"{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}"#
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)

        let cases: [(String, [UInt8], String)] = [
            ("empty file", [], "0 bytes, too short"),
            ("truncated to 5 bytes", Array(valid.prefix(5)), "5 bytes, too short"),
            ("truncated inside the header", Array(valid.prefix(8 + n - 1)), "runs past the end of the file"),
            ("absurd header length", safetensorsBytes(headerBytes: validHeader, [], declaredLength: 1 << 63), "absurd"),
            ("header length above 100 MB", safetensorsBytes(headerBytes: validHeader, [], declaredLength: 100_000_001), "absurd"),
            ("truncated data", Array(valid.dropLast(2)), "past the end of the data section"),
            ("trailing bytes", valid + [0, 0, 0, 0], "cover only"),
            ("invalid UTF-8", safetensorsBytes(headerBytes: Array(#"{"a\#u{1}"#.utf8) + [0xFF] + Array("\":1}   ".utf8), []), "not valid UTF-8"),
            ("not JSON", safetensorsBytes("{not json", data), "not valid JSON"),
            ("JSON array", safetensorsBytes("[1,2]", []), "not a JSON object"),
            ("trailing garbage", safetensorsBytes(two(a) + "x", data), "trailing characters"),
            ("NUL padding", safetensorsBytes(headerBytes: Array(two(a).utf8) + [0, 0, 0], data), "not valid JSON"),
            ("byte order mark", safetensorsBytes(headerBytes: [0xEF, 0xBB, 0xBF] + Array("{}".utf8), []), "not valid JSON"),
            ("lone surrogate", safetensorsBytes(#"{"\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, [0]), "not valid JSON"),
            ("deep nesting", safetensorsBytes(deep, []), "nesting"),
            ("missing dtype", safetensorsBytes(two(#"{"shape":[2,3],"data_offsets":[0,24]}"#), data), "tensor 'a' has no dtype"),
            ("missing shape", safetensorsBytes(two(#"{"dtype":"F32","data_offsets":[0,24]}"#), data), "tensor 'a' has no shape"),
            ("missing data_offsets", safetensorsBytes(two(#"{"dtype":"F32","shape":[2,3]}"#), data), "tensor 'a' has no data_offsets"),
            ("entry not an object", safetensorsBytes(two("[1]"), data), "tensor 'a' is an array, not an object"),
            ("unknown dtype", safetensorsBytes(two(#"{"dtype":"F99","shape":[2,3],"data_offsets":[0,24]}"#), data), "unknown dtype 'F99'"),
            ("lowercase dtype", safetensorsBytes(two(#"{"dtype":"f32","shape":[2,3],"data_offsets":[0,24]}"#), data), "unknown dtype 'f32'"),
            ("negative dimension", safetensorsBytes(two(#"{"dtype":"F32","shape":[-2,3],"data_offsets":[0,24]}"#), data), "non-negative integers"),
            ("float dimension", safetensorsBytes(two(#"{"dtype":"F32","shape":[2.0,3],"data_offsets":[0,24]}"#), data), "non-negative integers"),
            ("three offsets", safetensorsBytes(two(#"{"dtype":"F32","shape":[2,3],"data_offsets":[0,24,5]}"#), data), "not two non-negative integers"),
            ("string offsets", safetensorsBytes(two(#"{"dtype":"F32","shape":[2,3],"data_offsets":["0","24"]}"#), data), "not two non-negative integers"),
            ("begin after end", safetensorsBytes(two(#"{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}"#), data), "begin > end"),
            ("offsets past the data", safetensorsBytes(two(#"{"dtype":"F32","shape":[2,3],"data_offsets":[0,400]}"#), data), "past the end of the data section"),
            ("gap", safetensorsBytes(two(a, #"{"dtype":"F16","shape":[3],"data_offsets":[26,32]}"#), data + [0, 0]), "leaves a gap after tensor 'a'"),
            ("overlap", safetensorsBytes(two(a, #"{"dtype":"F16","shape":[3],"data_offsets":[20,26]}"#), Array(data.prefix(26))), "overlaps tensor 'a'"),
            ("data not starting at 0", safetensorsBytes(#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#, [0, 0, 0, 0]), "must start at 0"),
            ("byte count != shape × dtype", safetensorsBytes(two(#"{"dtype":"F32","shape":[2,2],"data_offsets":[0,24]}"#), data), "shape [2, 2] of F32 needs 16"),
            ("shape overflow", safetensorsBytes(#"{"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,0]}}"#, []), "too large"),
            ("sub-byte total", safetensorsBytes(#"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#, [0, 0]), "byte boundary"),
            ("metadata value not a string", safetensorsBytes(#"{"__metadata__":{"x":1},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, [0]), "__metadata__ entry 'x'"),
            ("metadata not an object", safetensorsBytes(#"{"__metadata__":[1],"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, [0]), "__metadata__ is an array"),
        ]
        for (name, bytes, reason) in cases {
            let file = dir.appendingPathComponent("bad.safetensors")
            try Data(bytes).write(to: file)
            let error = openError { _ = try SafeTensorsArchive(file: file) }
            guard case .corruptCheckpoint(let path, let message) = error else {
                Issue.record("\(name): expected corruptCheckpoint, got \(String(describing: error))")
                continue
            }
            #expect(path == file.path, "\(name)")
            #expect(message.contains(reason), "\(name): \(message)")
            #expect(error?.description.hasPrefix(file.path + ": corrupt checkpoint: ") == true, "\(name)")
        }
    }

    @Test func missingAndUnreadableFiles() {
        let missing = fixtures.appendingPathComponent("no-such.safetensors")
        #expect(openError { _ = try SafeTensorsArchive(file: missing) } == .missingFile(path: missing.path))
        guard case .unreadableFile(let path, _) = openError({ _ = try SafeTensorsArchive(file: fixtures) }) else {
            Issue.record("opening a directory as a file should be .unreadableFile")
            return
        }
        #expect(path == fixtures.path)
    }
}

@Suite struct SafeTensorsDirectoryTests {
    @Test func readsShardedDirectory() throws {
        let dir = fixtures.appendingPathComponent("sharded")
        let archive = try SafeTensorsArchive(directory: dir)
        var all: [String: Expected.TensorValues] = [:]
        for (name, file) in Expected.shared.files where name.hasPrefix("sharded/") {
            all.merge(file.tensors) { a, _ in a }
        }
        #expect(archive.keys == all.keys.sorted())
        #expect(archive.keys.contains("extra.unindexed"))  // in a shard, not in the index: transformers loads it
        #expect(archive.metadata == ["format": "pt"])
        #expect(archive.fileURLs.map(\.lastPathComponent) == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        for (key, values) in all {
            let t = try archive.tensor(key)
            #expect(bits(t) == values.bits, "\(key)")
            #expect(archive.info(key)?.dtype == values.dtype)
        }
    }

    @Test func prefersModelSafetensors() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("f32.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
        // An index naming absent shards is ignored when model.safetensors exists, as in transformers.
        try Data(#"{"weight_map":{"x":"gone.safetensors"}}"#.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let archive = try SafeTensorsArchive(directory: dir)
        #expect(archive.keys == Expected.shared.files["f32.safetensors"]?.tensors.keys.sorted())
        #expect(archive.path == dir.path)
    }

    @Test func reportsMissingFiles() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(openError { _ = try SafeTensorsArchive(directory: dir) } == .missingFile(path: dir.appendingPathComponent("model.safetensors").path))
        let absent = dir.appendingPathComponent("absent")
        #expect(openError { _ = try SafeTensorsArchive(directory: absent) } == .missingFile(path: absent.path))

        try Data(#"{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#.utf8)
            .write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("sharded/model-00001-of-00002.safetensors"),
                                         to: dir.appendingPathComponent("model-00001-of-00002.safetensors"))
        #expect(openError { _ = try SafeTensorsArchive(directory: dir) }
                == .missingFile(path: dir.appendingPathComponent("model-00002-of-00002.safetensors").path))
    }

    @Test func rejectsInconsistentIndex() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let index = dir.appendingPathComponent("model.safetensors.index.json")
        let shard = dir.appendingPathComponent("model-00001-of-00002.safetensors")
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("sharded/model-00001-of-00002.safetensors"), to: shard)

        try Data(#"{"weight_map":{"shared.weight":"model-00001-of-00002.safetensors","lm_head.weight":"model-00001-of-00002.safetensors"}}"#.utf8).write(to: index)
        let error = openError { _ = try SafeTensorsArchive(directory: dir) }
        guard case .corruptCheckpoint(let path, let reason) = error else {
            Issue.record("expected corruptCheckpoint, got \(String(describing: error))")
            return
        }
        #expect(path == shard.path)
        #expect(reason.contains("lm_head.weight"))

        let bad: [(String, String)] = [
            ("{", "not valid JSON"),
            ("[]", "not a JSON object"),
            (#"{"metadata":{}}"#, "no weight_map"),
            (#"{"weight_map":[]}"#, "weight_map is an array"),
            (#"{"weight_map":{"a":1}}"#, "weight_map entry 'a'"),
            (#"{"weight_map":{"a":"../model-00001-of-00002.safetensors"}}"#, "outside the model directory"),
        ]
        for (text, reason) in bad {
            try Data(text.utf8).write(to: index)
            let error = openError { _ = try SafeTensorsArchive(directory: dir) }
            guard case .corruptCheckpoint(let path, let message) = error else {
                Issue.record("\(text): expected corruptCheckpoint, got \(String(describing: error))")
                continue
            }
            #expect(path == index.path)
            #expect(message.contains(reason), "\(text): \(message)")
        }
    }
}

@Suite struct SafeTensorsWriterTests {
    private func readBytes(_ url: URL) throws -> [UInt8] { try [UInt8](Data(contentsOf: url)) }

    @Test(arguments: ["F32", "F16"])
    func writesWhatPythonWrites(dtype: String) throws {
        let reference = try #require(Expected.shared.writer_reference[dtype])
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.safetensors")
        let tensors = reference.inputs.mapValues(tensor)
        try SafeTensorsWriter.write(tensors, to: out, as: try #require(.init(rawValue: dtype)), metadata: reference.metadata)
        #expect(try readBytes(out) == readBytes(fixtures.appendingPathComponent(reference.file)))
    }

    @Test func headerHasThePythonLayout() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("model.safetensors")
        let tensors = ["b": Tensor(shape: [3], values: [1, 2, 3]), "a.x": Tensor(shape: [2, 1], values: [4, 5]),
                       "c": Tensor(shape: [], values: [6])]
        try SafeTensorsWriter.write(tensors, to: out)
        let bytes = try readBytes(out)
        let n = Int(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian })
        #expect(n % 8 == 0)
        #expect(bytes.count == 8 + n + 4 * 6)
        let header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        let json = header.trimmingCharacters(in: .whitespaces)
        #expect(header.hasPrefix(#"{"__metadata__":{"format":"pt"},"a.x":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},"#))
        #expect(json == #"{"__metadata__":{"format":"pt"},"a.x":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[3],"data_offsets":[8,20]},"c":{"dtype":"F32","shape":[],"data_offsets":[20,24]}}"#)
        #expect(header.dropFirst(json.count).allSatisfy { $0 == " " })
        #expect(header.count - json.count < 8)
        let values = bytes[(8 + n)...].withUnsafeBytes { raw in (0..<6).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
        #expect(values == [4, 5, 1, 2, 3, 6])
    }

    @Test(arguments: [SafeTensorsWriter.StoredType.f32, .f16, .bf16])
    func roundTrips(type: SafeTensorsWriter.StoredType) throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var generator = SystemRandomNumberGenerator()
        var randomBits = (0..<1000).map { _ in UInt32.random(in: .min ... .max, using: &generator) }
        randomBits += [0, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0001, 0x0000_0001, 0x7F7F_FFFF]
        let values = randomBits.map(Float.init(bitPattern:))
        let tensors = ["x": Tensor(shape: [values.count], values: values), "y.scalar": Tensor(shape: [], values: [3.5]),
                       "z.empty": Tensor(zeros: [0, 4])]
        let out = dir.appendingPathComponent("rt.safetensors")
        try SafeTensorsWriter.write(tensors, to: out, as: type)
        let archive = try SafeTensorsArchive(file: out)
        #expect(archive.keys == ["x", "y.scalar", "z.empty"])
        #expect(archive.info("x") == TensorInfo(dtype: type.rawValue, shape: [values.count]))
        #expect(try archive.tensor("y.scalar").array == [3.5])
        #expect(try archive.tensor("z.empty").shape == [0, 4])
        let got = try archive.tensor("x").array
        for (input, output) in zip(values, got) {
            switch type {
            case .f32:
                #expect(output.bitPattern == input.bitPattern)
            case .f16:
                let h = HalfConversion.halfBits(from: input)
                #expect(input.isNaN ? output.isNaN : output.bitPattern == HalfConversion.floatBits(fromHalf: h))
            case .bf16:
                #expect(input.isNaN ? output.isNaN : output.bitPattern == UInt32(HalfConversion.bfloat16Bits(from: input)) << 16)
            }
        }
    }

    @Test func roundsLikePython() {
        let r = Expected.shared.rounding
        for (i, input) in r.inputs.enumerated() {
            let x = Float(bitPattern: input)
            #expect(HalfConversion.halfBits(from: x) == r.f16[i], "f16 of \(String(input, radix: 16))")
            #expect(HalfConversion.bfloat16Bits(from: x) == r.bf16[i], "bf16 of \(String(input, radix: 16))")
        }
        #expect(Float(bitPattern: HalfConversion.floatBits(fromHalf: HalfConversion.halfBits(from: .nan))).isNaN)
        #expect(Float(bitPattern: UInt32(HalfConversion.bfloat16Bits(from: -.nan)) << 16).isNaN)
    }

    @Test func rejectsReservedName() {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("never-\(UUID().uuidString).safetensors")
        let error = openError { try SafeTensorsWriter.write(["__metadata__": Tensor(zeros: [1])], to: url) }
        guard case .writeFailed(let path, _) = error else {
            Issue.record("expected writeFailed, got \(String(describing: error))")
            return
        }
        #expect(path == url.path)
        #expect(!FileManager.default.fileExists(atPath: url.path))
    }

    @Test func overwritingKeepsOpenMappingsValid() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.safetensors")
        try SafeTensorsWriter.write(["w": Tensor(shape: [4], values: [1, 2, 3, 4])], to: url)
        let old = try SafeTensorsArchive(file: url).tensor("w")
        try SafeTensorsWriter.write(["w": Tensor(shape: [4], values: [5, 6, 7, 8])], to: url)
        #expect(old.array == [1, 2, 3, 4])
        #expect(try SafeTensorsArchive(file: url).tensor("w").array == [5, 6, 7, 8])
    }
}

@Suite struct SafeTensorsHalfConversionTests {
    @Test func decodesEveryHalfExactly() {
        let all = (0...UInt16.max).map { $0 }
        var decoded = [Float](repeating: 0, count: all.count)
        all.withUnsafeBytes { src in
            decoded.withUnsafeMutableBufferPointer { dst in
                HalfConversion.decodeHalf(src.baseAddress!, into: dst.baseAddress!, count: all.count)
            }
        }
        for h in all {
            let got = decoded[Int(h)].bitPattern
                        if h & 0x7C00 == 0x7C00 && h & 0x03FF != 0 {
                // NaN: numpy keeps sign and payload (shifted), and so do we.
                #expect(got == (UInt32(h & 0x8000) << 16) | 0x7F80_0000 | (UInt32(h & 0x03FF) << 13))
            } else {
                #if !(os(macOS) && arch(x86_64))
                #expect(got == Float(Float16(bitPattern: h)).bitPattern, "half \(String(h, radix: 16))")
                #endif
                #expect(HalfConversion.halfBits(from: Float(bitPattern: got)) == h)  // exact values survive encoding
            }
        }
    }

    #if !(os(macOS) && arch(x86_64))
    @Test func encodesLikeFloat16() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200_000 {
            let x = Float(bitPattern: UInt32.random(in: .min ... .max, using: &generator))
            guard !x.isNaN else { continue }
            #expect(HalfConversion.halfBits(from: x) == Float16(x).bitPattern, "\(x.bitPattern)")
        }
    }
    #endif

    @Test func decodesBFloat16() {
        let input: [UInt16] = (0..<37).map { UInt16(truncatingIfNeeded: $0 &* 1_777 &+ 0x3F00) }
        var out = [Float](repeating: 0, count: input.count)
        input.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { HalfConversion.decodeBFloat16(src.baseAddress!, into: $0.baseAddress!, count: input.count) }
        }
        #expect(out.map(\.bitPattern) == input.map { UInt32($0) << 16 })
    }
}

@Suite struct SafeTensorsAtomicFileTests {
    private func leftovers(in dir: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp-") }
    }

    @Test func writesAndReplacesWithoutLeftovers() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("config.json")
        try AtomicFile.write(Data("one".utf8), to: url)
        try AtomicFile.write(Data("two".utf8), to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == "two")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["config.json"])
    }

    @Test func failedBodyLeavesDestinationAlone() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.safetensors")
        try AtomicFile.write(Data("old".utf8), to: url)
        let error = openError {
            try AtomicFile.write(to: url) { (sink: AtomicFile.Sink) throws(T5Error) in
                try sink.write(Array("half of the new con".utf8))
                throw .writeFailed(path: url.path, reason: "simulated disk full")
            }
        }
        #expect(error == .writeFailed(path: url.path, reason: "simulated disk full"))
        #expect(try String(contentsOf: url, encoding: .utf8) == "old")
        #expect(try leftovers(in: dir).isEmpty)
    }

    @Test func failedRenameLeavesDestinationAlone() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A non-empty directory cannot be replaced by a file, even by root.
        let url = dir.appendingPathComponent("occupied")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
        try Data("keep".utf8).write(to: url.appendingPathComponent("inside"))
        let error = openError { try AtomicFile.write(Data("new".utf8), to: url) }
        guard case .writeFailed(let path, _) = error else {
            Issue.record("expected writeFailed, got \(String(describing: error))")
            return
        }
        #expect(path == url.path)
        #expect(try String(contentsOf: url.appendingPathComponent("inside"), encoding: .utf8) == "keep")
        #expect(try leftovers(in: dir).isEmpty)
    }

    @Test func unwritableLocationsFailCleanly() throws {
        let dir = makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // The parent is a regular file: fails for every user, including root.
        let file = dir.appendingPathComponent("plain")
        try Data("x".utf8).write(to: file)
        let inside = file.appendingPathComponent("config.json")
        guard case .writeFailed(let path, let reason) = openError({ try AtomicFile.write(Data("{}".utf8), to: inside) }) else {
            Issue.record("expected writeFailed")
            return
        }
        #expect(path == inside.path)
        #expect(reason.contains("temporary file"))

        // A read-only directory (root ignores permissions, so this part only runs unprivileged).
        if getuid() != 0 {
            let locked = dir.appendingPathComponent("locked")
            try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: false)
            try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: locked.path)
            defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: locked.path) }
            let target = locked.appendingPathComponent("model.safetensors")
            #expect(throws: T5Error.self) { try SafeTensorsWriter.write(["w": Tensor(zeros: [2])], to: target) }
            #expect(try FileManager.default.contentsOfDirectory(atPath: locked.path).isEmpty)
        }
    }
}
