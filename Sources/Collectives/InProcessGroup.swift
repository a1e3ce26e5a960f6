import ChorusMPI
import Foundation

/// Threads standing in for ranks, so collective algorithms can be unit-tested in one
/// process (like swift-nio's `EmbeddedEventLoop`): `run` starts one thread per rank,
/// each with its own `InProcessGroup.Member`, and every message is logged so a test
/// can assert the traffic (how many messages, which peers, how many bytes).
public final class InProcessGroup: @unchecked Sendable {
    /// One logged message.
    public struct Message: Equatable, Sendable {
        public let source: Int
        public let destination: Int
        public let tag: Int
        public let bytes: Int
    }

    public let size: Int
    private let condition = NSCondition()
    /// Undelivered messages, oldest first: (source, destination, tag, payload).
    private var mailbox: [(source: Int, destination: Int, tag: Int, payload: [UInt8])] = []
    private var log: [Message] = []

    public init(size: Int) {
        precondition(size >= 1)
        self.size = size
    }

    /// Every message sent so far, in the order sends were posted.
    public var messages: [Message] {
        condition.lock(); defer { condition.unlock() }
        return log
    }

    /// Runs `body` on `size` threads, one per rank, and returns when all have finished.
    public func run(_ body: @escaping @Sendable (Member) -> Void) {
        let done = DispatchGroup()
        for rank in 0..<size {
            done.enter()
            let thread = Thread { [self] in
                body(Member(group: self, rank: rank))
                done.leave()
            }
            thread.stackSize = 1 << 22
            thread.start()
        }
        done.wait()
    }

    fileprivate func post(_ payload: [UInt8], from source: Int, to destination: Int, tag: Int) {
        condition.lock()
        mailbox.append((source, destination, tag, payload))
        log.append(Message(source: source, destination: destination, tag: tag, bytes: payload.count))
        condition.broadcast()
        condition.unlock()
    }

    fileprivate func take(from source: Int, to destination: Int, tag: Int) -> [UInt8] {
        condition.lock(); defer { condition.unlock() }
        while true {
            // MPI's non-overtaking rule: the oldest matching message is delivered first.
            if let i = mailbox.firstIndex(where: { $0.source == source && $0.destination == destination && $0.tag == tag }) {
                return mailbox.remove(at: i).payload
            }
            condition.wait()
        }
    }

    /// One rank's view of the group.
    public final class Member: PointToPoint, @unchecked Sendable {
        public let rank: Int
        public var size: Int { group.size }
        let group: InProcessGroup

        init(group: InProcessGroup, rank: Int) {
            self.group = group
            self.rank = rank
        }

        /// Sends are buffered (copied at once), so a send never blocks, as with a large
        /// enough MPI eager limit; the receive matches when it is waited for.
        public func startSend<T: MPIScalar>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int) -> Transfer {
            precondition((0..<size).contains(destination))
            group.post(Array(UnsafeRawBufferPointer(buffer)), from: rank, to: destination, tag: tag)
            return Completed()
        }

        public func startReceive<T: MPIScalar>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                               tag: Int) -> Transfer {
            precondition((0..<size).contains(source))
            return PendingReceive(member: self, buffer: UnsafeMutableRawBufferPointer(buffer), source: source, tag: tag)
        }

        public func abort(_ message: String) -> Never {
            fatalError("rank \(rank): \(message)")
        }
    }

    final class Completed: Transfer {
        func wait() {}
    }

    /// A receive that matches the oldest fitting message when waited for (receives
    /// are waited in the order they were started, so order is MPI's).
    final class PendingReceive: Transfer {
        let member: Member
        let buffer: UnsafeMutableRawBufferPointer
        let source: Int
        let tag: Int
        var done = false

        init(member: Member, buffer: UnsafeMutableRawBufferPointer, source: Int, tag: Int) {
            self.member = member
            self.buffer = buffer
            self.source = source
            self.tag = tag
        }

        func wait() {
            guard !done else { return }
            done = true
            let payload = member.group.take(from: source, to: member.rank, tag: tag)
            precondition(payload.count == buffer.count,
                         "rank \(member.rank) expected \(buffer.count) bytes from \(source), got \(payload.count)")
            payload.withUnsafeBytes { buffer.copyMemory(from: $0) }
        }
    }
}
