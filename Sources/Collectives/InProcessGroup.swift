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

        public func exchange<T: MPIScalar>(send sendBuffer: UnsafeBufferPointer<T>, to destination: Int,
                                           receive receiveBuffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                           tag: Int) {
            precondition((0..<size).contains(destination) && (0..<size).contains(source))
            // Sends are buffered (copied) so a rank never blocks on its own send, as
            // MPI_Sendrecv guarantees.
            group.post(Array(UnsafeRawBufferPointer(sendBuffer)), from: rank, to: destination, tag: tag)
            let payload = group.take(from: source, to: rank, tag: tag)
            precondition(payload.count == receiveBuffer.count * MemoryLayout<T>.stride,
                         "rank \(rank) expected \(receiveBuffer.count) elements from \(source), got \(payload.count / MemoryLayout<T>.stride)")
            payload.withUnsafeBytes { bytes in
                UnsafeMutableRawBufferPointer(receiveBuffer).copyMemory(from: bytes)
            }
        }
    }
}
