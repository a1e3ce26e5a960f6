import Communication
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Ends a job that stopped making progress, instead of letting it hang silently.
///
/// Code about to block on other ranks (a bucket's all-reduce, the wait for gradients,
/// a pipeline transfer) brackets the wait with `waiting(for:)`, naming what it waits
/// for. A thread checks twice a second: a wait older than half the timeout prints a
/// stall warning (like Horovod's stall inspector); one older than the timeout prints
/// what it was waiting for and how long, and ends the whole job through the
/// communicator's `abort` (`MPI_Abort`), so every rank exits non-zero and the cause
/// is on the console. `describeLimit` names the limit in the caller's terms (the
/// command line names its flag).
///
/// A rank whose peer died or stopped responding is exactly the rank that is waiting,
/// so the report comes from the ranks that can tell, naming the operation and step.
public final class Watchdog: @unchecked Sendable {
    // @unchecked Sendable: all mutable state is guarded by `lock`; the communicator
    // is only used to abort, which is safe from any thread.
    /// 10 minutes, PyTorch's default collective timeout: longer than any healthy wait
    /// (a checkpoint save, the slowest bucket on a slow network), short enough that a
    /// lost rank does not hold a cluster allocation for hours.
    public static let defaultTimeoutSeconds = 600.0

    public let timeout: Double
    private let rank: Int
    private let communicator: any Communicator
    private let describeLimit: @Sendable (Double) -> String
    private let lock = NSLock()
    private var waits: [Int: (what: String, since: Double, warned: Bool)] = [:]
    private var nextToken = 0
    private var stopped = false

    /// Watches waits on `communicator`'s ranks; `rank` names this one in reports.
    public init(timeout: Double, rank: Int, communicator: any Communicator,
                describeLimit: @escaping @Sendable (Double) -> String = { "limit \(Int($0)) s" }) {
        self.timeout = timeout
        self.rank = rank
        self.communicator = communicator
        self.describeLimit = describeLimit
        let thread = Thread { [weak self] in
            while let self, !self.isStopped {
                self.inspect()
                usleep(500_000)
            }
        }
        thread.name = "chorus-watchdog"
        thread.start()
    }

    deinit { stop() }

    public func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
    }

    private var isStopped: Bool {
        lock.lock(); defer { lock.unlock() }
        return stopped
    }

    /// Runs `body`, which may block on other ranks, under watch.
    @discardableResult
    public func waiting<T>(for what: @autoclosure () -> String, _ body: () throws -> T) rethrows -> T {
        lock.lock()
        let token = nextToken
        nextToken += 1
        waits[token] = (what(), MonotonicClock.seconds(), false)
        lock.unlock()
        defer {
            lock.lock()
            waits[token] = nil
            lock.unlock()
        }
        return try body()
    }

    private func inspect() {
        let now = MonotonicClock.seconds()
        lock.lock()
        var expired: (String, Double)?
        for (token, wait) in waits {
            let age = now - wait.since
            if age > timeout {
                expired = (wait.what, age)
            } else if age > timeout / 2 && !wait.warned {
                waits[token]!.warned = true
                writeToStandardError("chorus [rank \(rank)]: stall: waiting \(Int(age)) s for \(wait.what); the job will be ended after \(Int(timeout)) s (\(describeLimit(timeout)))\n")
            }
        }
        lock.unlock()
        if let (what, age) = expired {
            communicator.abort("no progress for \(Int(age)) s (\(describeLimit(timeout))): waiting for \(what); another rank has probably died or stopped responding")
        }
    }
}

extension Optional where Wrapped == Watchdog {
    /// Runs `body` under the watchdog when there is one.
    @discardableResult
    public func waiting<T>(for what: @autoclosure () -> String, _ body: () throws -> T) rethrows -> T {
        switch self {
        case .some(let watchdog): try watchdog.waiting(for: what(), body)
        case .none: try body()
        }
    }
}
