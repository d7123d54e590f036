import Foundation

/// How many tokens a stream's consumer has asked for and the producer not yet delivered: the decode thread
/// waits here before handing over each token, and stops once the stream is gone.
final class StreamDemand: @unchecked Sendable {
    private let condition = NSCondition()
    private var requested = 0
    private var cancelled = false

    /// Called by the consumer's `next()`.
    func grant() {
        condition.lock()
        requested += 1
        condition.signal()
        condition.unlock()
    }

    /// Called when the stream terminates (released, finished or its consuming task cancelled).
    func cancel() {
        condition.lock()
        cancelled = true
        condition.signal()
        condition.unlock()
    }

    /// Blocks the decode thread until the consumer wants a token; throws `.cancelled` once it never will.
    func wait() throws(T5Error) {
        condition.lock()
        defer { condition.unlock() }
        while requested == 0 && !cancelled { condition.wait() }
        if cancelled { throw .cancelled }
        requested -= 1
    }
}

/// The producer's stream as its single consumer reads it: released with the pulling stream, which terminates
/// the producer's side.
final class StreamSource: @unchecked Sendable {
    private var iterator: AsyncThrowingStream<StreamedToken, Error>.AsyncIterator

    init(_ tokens: AsyncThrowingStream<StreamedToken, Error>) { iterator = tokens.makeAsyncIterator() }

    /// Only ever called by the one task iterating the pulling stream, one call at a time.
    func next() async throws -> StreamedToken? { try await iterator.next() }
}
