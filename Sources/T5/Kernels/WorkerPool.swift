import CKernels
import Foundation
import Synchronization

/// Long-lived worker threads that spin between jobs.
///
/// A decode step is a few dozen products of 10-100 µs each: waking a sleeping thread per product (what
/// `DispatchQueue.concurrentPerform` does, through a futex) cost a sizeable share of the step. Here the
/// workers spin for a while (`spinTime`) after each job, so the next job reaches them in a few hundred
/// nanoseconds, and only then sleep on a semaphore. Past a few tens of microseconds every wait yields its
/// core, so that with more runnable threads than cores (other processes, several pools) spinning never
/// keeps the thread it waits for off the CPU.
///
/// A job is published as one atomic word, the ticket: (epoch, parts, next part). Every thread, the caller
/// included, claims parts by compare-and-swap on the ticket, so parts are shared out dynamically and a
/// worker that is late or asleep costs nothing: the caller simply runs its parts. The epoch makes a stale
/// compare-and-swap (a worker still holding the previous job's ticket) fail. The caller returns once every
/// part has finished, so `body` and the buffers it touches outlive every use.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// How long an idle worker spins (first with `pause`, then with `sched_yield`) before it sleeps.
    static let spinTime: UInt64 = 2_000_000  // ns
    /// Spins with `pause` (tens of microseconds) before a waiting thread starts yielding its core.
    static let pauseSpins = 4096

    private static let partBits = 20, partMask = (1 << 20) - 1, epochMask = (1 << 22) - 1

    /// Held by the thread whose job the pool is serving.
    private let busy = Atomic<Bool>(false)
    /// (epoch << 40) | (parts << 20) | next part.
    private let ticket = Atomic<Int>(0)
    /// Parts of the current job that have finished.
    private let finished = Atomic<Int>(0)
    /// Workers allowed to take part in the current job (worker i takes part if i < helpers).
    private let helpers = Atomic<Int>(0)
    /// The current job; written only while no part of any job is outstanding.
    private var body: ((Int) -> Void)?
    private var epoch = 0
    private var workers: [Worker] = []

    private final class Worker: @unchecked Sendable {
        let sleeping = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
    }

    /// Runs the job on the caller and the spinning workers; false (nothing run) when the pool is busy.
    func run(parts: Int, helpers wanted: Int, _ job: @escaping (Int) -> Void) -> Bool {
        guard parts <= Self.partMask,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else { return false }
        defer { busy.store(false, ordering: .releasing) }
        while workers.count < wanted { startWorker(index: workers.count) }

        body = job
        finished.store(0, ordering: .relaxed)
        helpers.store(wanted, ordering: .relaxed)
        epoch = (epoch + 1) & Self.epochMask
        ticket.store(epoch << 40 | parts << Self.partBits, ordering: .sequentiallyConsistent)
        for (i, worker) in workers.enumerated() where i < wanted {
            if worker.sleeping.load(ordering: .sequentiallyConsistent),
               worker.sleeping.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent).exchanged {
                worker.wake.signal()
            }
        }
        claimParts()
        // A worker holds a part: spin briefly, then yield the core in case that worker is waiting for it
        // (more runnable threads than cores), which pure spinning would only delay.
        var spins = 0
        while finished.load(ordering: .acquiring) < parts {
            spins += 1
            if spins < Self.pauseSpins { t5_cpu_relax() } else { sched_yield() }
        }
        body = nil
        return true
    }

    /// Claims and runs parts of the current job until none is left.
    private func claimParts() {
        var t = ticket.load(ordering: .acquiring)
        while true {
            let parts = (t >> Self.partBits) & Self.partMask, next = t & Self.partMask
            guard next < parts else { return }
            let (exchanged, current) = ticket.compareExchange(expected: t, desired: t + 1, ordering: .acquiringAndReleasing)
            if exchanged {
                body.unsafelyUnwrapped(next)
                finished.add(1, ordering: .releasing)
                t = ticket.load(ordering: .acquiring)
            } else {
                t = current
            }
        }
    }

    private func hasWork(for index: Int) -> Bool {
        let t = ticket.load(ordering: .sequentiallyConsistent)
        return t & Self.partMask < (t >> Self.partBits) & Self.partMask && index < helpers.load(ordering: .relaxed)
    }

    private func startWorker(index: Int) {
        let worker = Worker()
        workers.append(worker)
        let thread = Thread { [self] in  // the pool lives as long as the process
            var idleSince = DispatchTime.now().uptimeNanoseconds
            var spins = 0
            while true {
                if hasWork(for: index) {
                    claimParts()
                    spins = 0
                    idleSince = DispatchTime.now().uptimeNanoseconds
                    continue
                }
                spins += 1
                if spins < Self.pauseSpins {
                    t5_cpu_relax()
                    continue
                }
                if spins & 63 != 0 || DispatchTime.now().uptimeNanoseconds - idleSince < Self.spinTime {
                    // Still ready within a microsecond or so, but leaving the core to any other runnable thread.
                    sched_yield()
                    continue
                }
                // Sleep. The caller stores the ticket, then reads `sleeping`; we store `sleeping`, then read
                // the ticket: one of us sees the other's write, so a job is never missed.
                worker.sleeping.store(true, ordering: .sequentiallyConsistent)
                if !hasWork(for: index) { worker.wake.wait() }
                worker.sleeping.store(false, ordering: .sequentiallyConsistent)
                spins = 0
                idleSince = DispatchTime.now().uptimeNanoseconds
            }
        }
        thread.name = "t5-worker-\(index)"
        thread.stackSize = 8 << 20
        thread.start()
    }
}
