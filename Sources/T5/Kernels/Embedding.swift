/// Token embedding lookup: row `id` of the (V, D) table for each token.
enum Embedding {
    /// x (B, length, D) ← table[ids]; positions past a sequence's end are left untouched (zero).
    static func forward(ids: [[Int]], table: UnsafePointer<Float>, dim: Int, length: Int, into x: UnsafeMutablePointer<Float>) {
        for (b, seq) in ids.enumerated() {
            for (t, id) in seq.enumerated() {
                (x + (b * length + t) * dim).update(from: table + id * dim, count: dim)
            }
        }
    }

    /// x (rows, D) ← table[ids[r]] for a flat list of ids (one decoder step of N rows, or N·T tokens).
    @inline(__always)
    static func forward(ids: UnsafePointer<Int32>, count: Int, table: UnsafePointer<Float>, dim: Int, into x: UnsafeMutablePointer<Float>) {
        for r in 0..<count {
            (x + r * dim).update(from: table + Int(ids[r]) * dim, count: dim)
        }
    }
}

extension Embedding {
    /// Backward of the flat `forward`: dTable[ids[r]] += dX[r] (a scatter-add; a repeated id sums its rows).
    static func backward(ids: UnsafePointer<Int32>, count: Int, dX: UnsafePointer<Float>, dim: Int, dTable: UnsafeMutablePointer<Float>) {
        for r in 0..<count {
            Vector.add(dX + r * dim, into: dTable + Int(ids[r]) * dim, dim)
        }
    }
}
