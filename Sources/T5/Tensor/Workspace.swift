/// The buffers of a forward pass (and of a training step's backward), reused by the next pass.
///
/// A step asks for its buffers in the same order every time (the order depends only on the config and on
/// whether there is dropout), so the n-th request of a step gets the n-th buffer of the previous one, grown if
/// this batch needs more. Without it a t5-small step mapped, faulted in and unmapped ~600 MB of fresh pages
/// (the kernel zeroing them was ~10% of the step). `mark`/`release(to:)` hand the buffers of a finished
/// layer's backward to the next layer. Used by one pass at a time: a training step's (like its
/// `ParameterStore`), or one inference call's, where each sub-layer releases its temporaries when it ends.
final class Workspace {
    private var buffers = [FloatStorage]()
    private var next = 0

    /// Starts a step: every buffer handed out before is free again.
    func reset() { next = 0 }

    /// A tensor of `shape` on the next buffer: zero-filled, or when `zeroed` is false holding whatever the
    /// buffer held (for outputs the caller overwrites entirely).
    func tensor(_ shape: [Int], zeroed: Bool = true) -> Tensor {
        let count = shape.reduce(1, *)
        if next == buffers.count {
            buffers.append(FloatStorage(count: count))  // zero-filled
        } else if buffers[next].count < count {
            buffers[next] = FloatStorage(count: count)
        } else if zeroed {
            let p = buffers[next].pointer
            Parallel.forEachSlice(count, cost: count) { s in (p + s.lowerBound).update(repeating: 0, count: s.count) }
        }
        let t = Tensor(shape: shape, storage: buffers[next])
        next += 1
        return t
    }

    /// The position of the next request, for `release(to:)`.
    var mark: Int { next }

    /// Frees the buffers handed out since `mark`; their tensors must be dead.
    func release(to mark: Int) {
        precondition(mark <= next, "release past the last request")
        next = mark
    }
}
