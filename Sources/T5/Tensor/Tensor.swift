import Foundation

/// A block of fp32 memory: either allocated here (64-byte aligned, zeroed) or a view into
/// memory owned by someone else, such as a memory-mapped checkpoint, which it keeps alive.
///
/// This class and `Tensor` are the only places that hold raw memory; kernels receive
/// `UnsafeMutablePointer<Float>` spans from them for the duration of a call. Internal: only the module
/// writes into a tensor (swift-collections keeps its raw pointers inside one internal handle type likewise).
final class FloatStorage: @unchecked Sendable {
    let count: Int
    let pointer: UnsafeMutablePointer<Float>
    private let owner: AnyObject?
    private let owned: Bool

    /// Allocates `count` zeroed floats.
    init(count: Int) {
        precondition(count >= 0)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
        self.count = count
        owner = nil
        owned = true
    }

    /// Views `count` floats at `pointer`, keeping `owner` (e.g. a file mapping) alive as long as this storage.
    init(viewing pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.pointer = pointer
        self.count = count
        self.owner = owner
        owned = false
    }

    deinit {
        if owned { UnsafeMutableRawPointer(pointer).deallocate() }
    }
}

/// An fp32 tensor: a shape over (a slice of) a `FloatStorage`, row-major.
///
/// A value type whose copies share storage, like a Swift array without copy-on-write:
/// the weights of a loaded model are never duplicated. Read-only outside the module (`shape`, `array`,
/// `withUnsafeBufferPointer`): a client holding a model's or a trainer's tensors cannot write into them.
public struct Tensor: Sendable {
    public let shape: [Int]
    let storage: FloatStorage
    let offset: Int

    public var count: Int { shape.reduce(1, *) }
    var pointer: UnsafeMutablePointer<Float> { storage.pointer + offset }
    var buffer: UnsafeMutableBufferPointer<Float> { .init(start: pointer, count: count) }

    init(shape: [Int], storage: FloatStorage, offset: Int = 0) {
        precondition(offset + shape.reduce(1, *) <= storage.count, "tensor \(shape) does not fit its storage")
        self.shape = shape
        self.storage = storage
        self.offset = offset
    }

    /// A new zero-filled tensor.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, storage: FloatStorage(count: shape.reduce(1, *)))
    }

    /// A new tensor holding `values` (row-major).
    public init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(zeros: shape)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    /// A copy of the values, for tests and serialization.
    public var array: [Float] { Array(buffer) }

    /// Calls `body` with the values (row-major), valid only for the duration of the call.
    public func withUnsafeBufferPointer<R, E: Error>(_ body: (UnsafeBufferPointer<Float>) throws(E) -> R) throws(E) -> R {
        try body(UnsafeBufferPointer(start: pointer, count: count))
    }

    /// An independent copy with its own storage (used when training must mutate a mapped weight).
    public func copy() -> Tensor {
        let t = Tensor(zeros: shape)
        t.pointer.update(from: pointer, count: count)
        return t
    }

    /// Row `i` of the tensor viewed as (shape[0], rest).
    func row(_ i: Int) -> UnsafeMutablePointer<Float> {
        pointer + i * (count / shape[0])
    }
}
