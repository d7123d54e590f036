import CKernels

/// How projection weights are held in memory, chosen at load (`--weights`).
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// fp32, exactly the checkpoint (the reference).
    case f32
    /// bf16: the high half of each fp32, half the bytes; products widen it back in registers.
    case bf16
    /// int8 with one fp32 scale per output channel (max |w| / 127), a quarter of the bytes.
    case int8
}

/// Raw bytes this process allocated (a quantized copy of a weight).
final class ByteStorage: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let count: Int

    init(count: Int) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
    }

    deinit { pointer.deallocate() }
}

/// A projection weight `[out, in]` (nn.Linear's layout) in fp32, bf16 or int8.
///
/// bf16 and int8 weights are either views into a memory-mapped checkpoint that stores them so (a
/// `t5 convert --weights` output, or a bf16 checkpoint loaded with `--weights bf16`) or a copy made at load.
/// Only the projections change precision; embeddings, norms and position biases stay fp32.
struct WeightMatrix: @unchecked Sendable {
    enum Storage {
        case f32(Tensor)
        case bf16(UnsafePointer<UInt16>)
        case int8(UnsafePointer<Int8>, scales: Tensor)
    }

    let rows: Int
    let cols: Int
    let storage: Storage
    /// Keeps the bytes behind a bf16 / int8 pointer alive (a file mapping or a `ByteStorage`).
    private let owner: AnyObject?
    /// An fp32 weight's panels packed once for the AVX-512 sgemm (`packedForProducts`), or nil.
    private(set) var packed: Tensor?

    /// An fp32 weight (2-D; an empty tensor stands for "no weight", e.g. a frozen parameter's gradient).
    init(_ tensor: Tensor) {
        precondition(tensor.shape.count == 2 || tensor.count == 0, "a weight matrix is 2-D, got \(tensor.shape)")
        rows = tensor.shape.count == 2 ? tensor.shape[0] : 0
        cols = tensor.shape.count == 2 ? tensor.shape[1] : 0
        storage = .f32(tensor)
        owner = nil
    }

    init(rows: Int, cols: Int, bf16 pointer: UnsafePointer<UInt16>, owner: AnyObject) {
        self.rows = rows
        self.cols = cols
        storage = .bf16(pointer)
        self.owner = owner
    }

    init(rows: Int, cols: Int, int8 pointer: UnsafePointer<Int8>, scales: Tensor, owner: AnyObject) {
        self.rows = rows
        self.cols = cols
        storage = .int8(pointer, scales: scales)
        self.owner = owner
    }

    var precision: WeightPrecision {
        switch storage {
        case .f32: return .f32
        case .bf16: return .bf16
        case .int8: return .int8
        }
    }

    /// Bytes the weight occupies (what a decode step reads).
    var byteCount: Int {
        switch storage {
        case .f32: return rows * cols * 4
        case .bf16: return rows * cols * 2
        case .int8: return rows * cols + rows * 4
        }
    }

    /// This fp32 weight with its panels packed once (CKernels `t5_sgemm_pack_weights`), so that products with
    /// many rows skip packing it on every call: what the encoder's weights get at load, since each encode
    /// multiplies them again. Unchanged where the AVX-512 sgemm does not run, or for bf16 / int8.
    /// The loader then releases the original's pages (`SafeTensorsArchive.releasePages`), so the resident
    /// size stays one copy of the weights; the original stays readable (training, conversion) from the file.
    func packedForProducts() -> WeightMatrix {
        guard case let .f32(t) = storage, packed == nil, rows > 0, cols > 0, t5_sgemm_available() != 0 else { return self }
        let panels = Tensor(zeros: [Int(t5_sgemm_packed_count(Int64(rows), Int64(cols)))])
        t5_sgemm_pack_weights(t.pointer, Int64(cols), Int64(rows), Int64(cols), panels.pointer)
        var copy = self
        copy.packed = panels
        return copy
    }

    /// The fp32 tensor, for an fp32 weight.
    var f32: Tensor? {
        if case let .f32(t) = storage { return t }
        return nil
    }

    /// The fp32 tensor of a weight that training uses (training runs on fp32 weights only).
    var tensor: Tensor {
        guard case let .f32(t) = storage else { preconditionFailure("training needs fp32 weights, got \(precision)") }
        return t
    }

    /// The fp32 data of a weight that training uses.
    var pointer: UnsafeMutablePointer<Float> { tensor.pointer }

    /// This weight in `precision`. fp32 → bf16 rounds to nearest even (as PyTorch's `.bfloat16()`);
    /// fp32 → int8 is symmetric per output row: scale = max |w| / 127, q = round(w / scale).
    /// A low-precision weight asked for fp32 is widened.
    func converted(to precision: WeightPrecision) -> WeightMatrix {
        if precision == self.precision { return self }
        let source = widened()
        let n = rows * cols
        switch precision {
        case .f32:
            return WeightMatrix(source)
        case .bf16:
            let bytes = ByteStorage(count: 2 * n)
            let out = bytes.pointer.bindMemory(to: UInt16.self, capacity: n)
            for i in 0..<n { out[i] = HalfConversion.bfloat16Bits(from: source.pointer[i]) }
            return WeightMatrix(rows: rows, cols: cols, bf16: UnsafePointer(out), owner: bytes)
        case .int8:
            let bytes = ByteStorage(count: n)
            let out = bytes.pointer.bindMemory(to: Int8.self, capacity: n)
            let scales = Tensor(zeros: [rows])
            for r in 0..<rows {
                let row = source.pointer + r * cols
                var largest: Float = 0
                for i in 0..<cols { largest = max(largest, abs(row[i])) }
                let scale = largest / 127
                scales.pointer[r] = scale
                let inverse: Float = scale > 0 ? 1 / scale : 0
                for i in 0..<cols {
                    out[r * cols + i] = Int8(max(-127, min(127, (row[i] * inverse).rounded(.toNearestOrEven))))
                }
            }
            return WeightMatrix(rows: rows, cols: cols, int8: UnsafePointer(out), scales: scales, owner: bytes)
        }
    }

    /// The weight as fp32 (a view for fp32, a new tensor otherwise).
    func widened() -> Tensor {
        switch storage {
        case let .f32(t):
            return t
        case let .bf16(p):
            let t = Tensor(zeros: [rows, cols])
            t5_bf16_to_f32_rows(p, Int64(cols), 0, Int64(rows), Int64(cols), t.pointer)
            return t
        case let .int8(p, scales):
            let t = Tensor(zeros: [rows, cols])
            t5_int8_to_f32_rows(p, scales.pointer, Int64(cols), 0, Int64(rows), Int64(cols), t.pointer)
            return t
        }
    }
}
