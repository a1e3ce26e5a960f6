import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A thread that runs submitted jobs one after another, in submission order.
///
/// The thread holds the worker, never its owner, so an owner dropped without an
/// explicit `stop()` still stops the thread from its `deinit`; `stop()` lets the
/// queued jobs finish first and returns when the thread has exited.
final class SerialWorker: @unchecked Sendable {
    // @unchecked Sendable: `jobs`, `stopping` and `threadID` are guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false
    private var threadID: pthread_t?
    private let exited = DispatchSemaphore(value: 0)

    init(name: String) {
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        precondition(!stopping, "a job was submitted to a stopped worker")
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Runs the jobs already queued, then ends the thread. Safe to call more than
    /// once, and from a job (the owner's last reference may go away on the worker's
    /// own thread): the thread then ends after that job, without waiting for itself.
    func stop() {
        condition.lock()
        let wasRunning = !stopping
        stopping = true
        let onWorker = threadID.map { pthread_equal($0, pthread_self()) != 0 } ?? false
        condition.broadcast()
        condition.unlock()
        if wasRunning && !onWorker { exited.wait() }
    }

    private func run() {
        condition.lock()
        threadID = pthread_self()
        condition.unlock()
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                exited.signal()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }
}
