import Foundation

#if !_endian(little)
#error("safetensors data is little-endian and is read in place; a big-endian host would need byte swapping")
#endif

/// A tensor's declared element type and shape, as stored in the checkpoint.
public struct TensorInfo: Sendable, Equatable {
    /// The safetensors dtype name ("F32", "BF16", "I64", ...).
    public let dtype: String
    public let shape: [Int]

    public init(dtype: String, shape: [Int]) {
        self.dtype = dtype
        self.shape = shape
    }
}

/// Read access to a Hugging Face safetensors checkpoint: one file, or a model directory holding
/// `model.safetensors` or shards listed by `model.safetensors.index.json`.
///
/// Opening maps the files and validates every header (see `SafeTensorsHeader` for the rules,
/// which are those of the Python library transformers loads with); no tensor data is read until
/// `tensor(_:)` asks for it. F32 tensors come back as zero-copy views of the mapping, so a model's
/// weights exist once in memory; other dtypes are converted into new fp32 storage on each call.
public final class SafeTensorsArchive: @unchecked Sendable {
    /// One mapped file and its validated header.
    struct File: Sendable {
        let mapping: FileMapping
        let header: SafeTensorsHeader
    }

    /// The file or directory this archive was opened from, for messages.
    public let path: String
    let files: [File]
    /// Tensor name → (index into `files`, entry).
    private let locations: [String: (file: Int, entry: SafeTensorsEntry)]

    /// Tensor names, sorted by their UTF-8 bytes.
    public let keys: [String]

    /// The `__metadata__` of the file; for shards, their union (earlier shard wins on conflicts).
    /// Files written by transformers carry `["format": "pt"]`.
    public let metadata: [String: String]

    /// The files backing the archive (one, or the shards in sorted order).
    public var fileURLs: [URL] { files.map { URL(fileURLWithPath: $0.mapping.path) } }

    /// Opens a single safetensors file.
    public convenience init(file: URL) throws(T5Error) {
        let mapping = try FileMapping(url: file)
        let header = try Self.readHeader(mapping)
        self.init(path: file.path, files: [File(mapping: mapping, header: header)], preferredFile: [:])
    }

    /// Opens the weights of a model directory the way transformers' `from_pretrained` finds them:
    /// `model.safetensors` if it exists, else `model.safetensors.index.json`, whose `weight_map`
    /// maps each tensor name to a shard file in the directory.
    ///
    /// Every shard must exist (`.missingFile`) and contain the tensors the index assigns to it
    /// (`.corruptCheckpoint`). Tensors a shard holds beyond the index are available too, since
    /// transformers loads every tensor of every shard. Neither file → `.missingFile` naming
    /// `model.safetensors`.
    /// The weights file of a directory written by `t5 convert --weights int8`.
    public static let int8FileName = "model.int8.safetensors"

    public convenience init(directory: URL) throws(T5Error) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) else {
            throw .missingFile(path: directory.path)
        }
        guard isDirectory.boolValue else {
            throw .unreadableFile(path: directory.path, reason: "not a directory")
        }
        let single = directory.appendingPathComponent("model.safetensors")
        // `t5 convert --weights int8` writes its int8 tensors under another name, so that transformers,
        // which would read them as floats and answer garbage, finds no weights and refuses the directory.
        let int8 = directory.appendingPathComponent(Self.int8FileName)
        if !FileManager.default.fileExists(atPath: single.path) && FileManager.default.fileExists(atPath: int8.path) {
            let mapping = try FileMapping(url: int8)
            let header = try Self.readHeader(mapping)
            self.init(path: directory.path, files: [File(mapping: mapping, header: header)], preferredFile: [:])
            return
        }
        if FileManager.default.fileExists(atPath: single.path) {
            let mapping = try FileMapping(url: single)
            let header = try Self.readHeader(mapping)
            self.init(path: directory.path, files: [File(mapping: mapping, header: header)], preferredFile: [:])
            return
        }
        let indexURL = directory.appendingPathComponent("model.safetensors.index.json")
        guard FileManager.default.fileExists(atPath: indexURL.path) else {
            // Formats transformers reads and this runtime does not: say how to convert them.
            for other in ["pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack", "model.ckpt.index"]
            where FileManager.default.fileExists(atPath: directory.appendingPathComponent(other).path) {
                throw .unreadableFile(path: directory.appendingPathComponent(other).path,
                                      reason: "this runtime reads safetensors only; convert the directory with `python3 tools/convert.py \(directory.path) OUT_DIR` (needs torch and transformers, once)")
            }
            throw .missingFile(path: single.path)
        }
        let weightMap = try Self.readWeightMap(indexURL)

        // Shards in sorted order, as transformers' get_checkpoint_shard_files does.
        let shardNames = Set(weightMap.values).sorted(by: utf8Precedes)
        var files: [File] = []
        var shardIndex: [String: Int] = [:]
        for name in shardNames {
            let url = directory.appendingPathComponent(name)
            let mapping = try FileMapping(url: url)
            let header = try Self.readHeader(mapping)
            shardIndex[name] = files.count
            files.append(File(mapping: mapping, header: header))
        }
        var preferred: [String: Int] = [:]
        var missing: [String: [String]] = [:]
        for (key, shard) in weightMap {
            guard let index = shardIndex[shard] else { continue }
            if files[index].header.entries[key] == nil {
                missing[shard, default: []].append(key)
            } else {
                preferred[key] = index
            }
        }
        if let shard = missing.keys.sorted(by: utf8Precedes).first, let keys = missing[shard] {
            let sortedKeys = keys.sorted(by: utf8Precedes)
            let shown = sortedKeys.prefix(5).joined(separator: ", ")
            let more = sortedKeys.count > 5 ? " and \(sortedKeys.count - 5) more" : ""
            throw .corruptCheckpoint(
                path: directory.appendingPathComponent(shard).path,
                reason: "model.safetensors.index.json maps \(sortedKeys.count) tensor\(sortedKeys.count == 1 ? "" : "s") to this shard that it does not contain: \(shown)\(more)")
        }
        self.init(path: directory.path, files: files, preferredFile: preferred)
    }

    /// `preferredFile` pins a tensor to the shard the index names; other tensors come from the
    /// last shard holding them, as when transformers merges shard state dicts in order.
    private init(path: String, files: [File], preferredFile: [String: Int]) {
        self.path = path
        self.files = files
        var locations: [String: (file: Int, entry: SafeTensorsEntry)] = [:]
        var metadata: [String: String] = [:]
        for (index, file) in files.enumerated() {
            for (name, entry) in file.header.entries where preferredFile[name] == nil || preferredFile[name] == index {
                locations[name] = (index, entry)
            }
            metadata.merge(file.header.metadata) { first, _ in first }
        }
        self.locations = locations
        self.metadata = metadata
        keys = locations.keys.sorted(by: utf8Precedes)
    }

    private static func readHeader(_ mapping: FileMapping) throws(T5Error) -> SafeTensorsHeader {
        try SafeTensorsHeader(bytes: UnsafeRawBufferPointer(mapping.bytes), path: mapping.path)
    }

    /// Reads `weight_map` from a sharded checkpoint's index.
    private static func readWeightMap(_ url: URL) throws(T5Error) -> [String: String] {
        let path = url.path
        func corrupt(_ reason: String) -> T5Error { .corruptCheckpoint(path: path, reason: reason) }
        let mapping = try FileMapping(url: url)
        let root: JSONValue
        do {
            root = try JSONParser.parse(UnsafeRawBufferPointer(mapping.bytes), allowNonFinite: true)
        } catch {
            throw corrupt("not valid JSON: \(error.description)")
        }
        guard case .object(let object) = root else { throw corrupt("not a JSON object") }
        guard let mapValue = object["weight_map"] else { throw corrupt("no weight_map") }
        guard case .object(let entries) = mapValue else {
            throw corrupt("weight_map is \(mapValue.typeName), not an object")
        }
        var map: [String: String] = [:]
        for member in entries.members {
            guard case .string(let shard) = member.value else {
                throw corrupt("weight_map entry '\(member.key)' is \(member.value.typeName), not a file name")
            }
            // Shards live in the model directory; refuse names that would read files elsewhere.
            let components = shard.split(separator: "/", omittingEmptySubsequences: false)
            guard !shard.isEmpty, !shard.hasPrefix("/"), !components.contains("..") else {
                throw corrupt("weight_map entry '\(member.key)' names '\(shard)', outside the model directory")
            }
            map[member.key] = shard
        }
        return map
    }

    /// The dtype and shape of `key`, or nil when the archive has no such tensor.
    public func info(_ key: String) -> TensorInfo? {
        locations[key].map { TensorInfo(dtype: $0.entry.dtype.rawValue, shape: $0.entry.shape) }
    }

    /// The tensor `key` as fp32.
    ///
    /// F32 data that is 4-byte aligned in memory (always, for files written by the Python library
    /// or by `SafeTensorsWriter`) is returned as a view of the mapping: no copy, and in-place
    /// updates stay private to this process. Misaligned F32, F16 and BF16 data is converted into
    /// new storage on every call, so callers should keep the result rather than ask again.
    /// Throws `.missingTensors` for an unknown key and `.unsupportedDType` for other dtypes.
    public func tensor(_ key: String) throws(T5Error) -> Tensor {
        guard let (fileIndex, entry) = locations[key] else {
            throw .missingTensors(path: path, keys: [key])
        }
        let file = files[fileIndex]
        let count = entry.elementCount
        let bytes = file.mapping.bytes
        guard let base = bytes.baseAddress else {
            // Only an empty file has no base address, and it cannot hold a valid header.
            throw .corruptCheckpoint(path: file.mapping.path, reason: "file is empty")
        }
        let source = base + file.header.dataStart + entry.begin
        switch entry.dtype {
        case .f32:
            if Int(bitPattern: source) % MemoryLayout<Float>.alignment == 0 {
                let pointer = source.bindMemory(to: Float.self, capacity: count)
                return Tensor(shape: entry.shape, storage: FloatStorage(viewing: pointer, count: count, owner: file.mapping))
            }
            let storage = FloatStorage(count: count)
            UnsafeMutableRawPointer(storage.pointer).copyMemory(from: source, byteCount: 4 * count)
            return Tensor(shape: entry.shape, storage: storage)
        case .f16:
            let storage = FloatStorage(count: count)
            HalfConversion.decodeHalf(source, into: storage.pointer, count: count)
            return Tensor(shape: entry.shape, storage: storage)
        case .bf16:
            let storage = FloatStorage(count: count)
            HalfConversion.decodeBFloat16(source, into: storage.pointer, count: count)
            return Tensor(shape: entry.shape, storage: storage)
        default:
            throw .unsupportedDType(key: key, dtype: entry.dtype.rawValue)
        }
    }

    /// The stored bytes of `key` inside its mapping, for weights used in their stored precision
    /// (bf16, int8) without a copy; the mapping is returned to keep them alive. Nil for an unknown key
    /// or data not aligned to `alignment`.
    func storedBytes(_ key: String, alignment: Int) -> (pointer: UnsafeRawPointer, byteCount: Int, owner: FileMapping)? {
        guard let (fileIndex, entry) = locations[key] else { return nil }
        let file = files[fileIndex]
        guard let base = file.mapping.bytes.baseAddress else { return nil }
        let pointer = UnsafeRawPointer(base + file.header.dataStart + entry.begin)
        guard Int(bitPattern: pointer) % alignment == 0 else { return nil }
        return (pointer, entry.end - entry.begin, file.mapping)
    }

    /// Tells the kernel this process no longer needs `key`'s pages (after converting it to another
    /// precision): the mapping is private and unmodified there, so the pages simply leave the resident set
    /// and would be read back from the file if touched again.
    func releasePages(of key: String) {
        guard let stored = storedBytes(key, alignment: 1) else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: stored.pointer) + page - 1) / page * page
        let end = (Int(bitPattern: stored.pointer) + stored.byteCount) / page * page
        guard end > start, let address = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(address, end - start, MADV_DONTNEED)
    }

    /// The mapping holding `key`'s data (tests use it to prove F32 tensors are views).
    func mapping(of key: String) -> FileMapping? {
        locations[key].map { files[$0.file].mapping }
    }
}
