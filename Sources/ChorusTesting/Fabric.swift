import Communication
import Foundation

/// The shared state of an in-process group: mailboxes, posted receives, collective
/// rendezvous and the scheduler, all behind one lock.
///
/// Matching follows MPI: a receive is matched when it is posted if a fitting message
/// is waiting, otherwise the next fitting message to arrive completes the oldest
/// fitting posted receive (messages from one sender to one receiver never overtake
/// each other). Sends are buffered: the payload is copied at once and the send is
/// complete, as with an eager protocol.
final class Fabric: @unchecked Sendable {
    // @unchecked Sendable: every mutable field is guarded by `condition`.
    let size: Int
    let nodeSize: Int
    let scheduler: Scheduler
    let condition = NSCondition()

    struct Envelope {
        let group: Int
        let source: Int
        let destination: Int
        let tag: Int
        let payload: [UInt8]
        let sentAt: Double
    }

    private var mailbox: [Envelope] = []
    private var posted: [PendingReceive] = []
    private(set) var log: [InProcessGroup.Message] = []
    private var rendezvous: [RendezvousKey: Rendezvous] = [:]
    private var nextGroupID = 1
    /// A group runs once: its mailboxes, clocks and schedule belong to that run.
    var used = false

    init(size: Int, nodeSize: Int, scheduling: InProcessGroup.Scheduling) {
        self.size = size
        self.nodeSize = nodeSize
        scheduler = Scheduler(size: size, scheduling: scheduling, condition: condition)
    }

    func locked<R>(_ body: () throws -> R) rethrows -> R {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    // MARK: Point-to-point (call with the lock held)

    private func matches(_ envelope: Envelope, _ receive: PendingReceive) -> Bool {
        envelope.group == receive.group && envelope.destination == receive.destination
            && (receive.source == Wildcard.anySource || receive.source == envelope.source)
            && (receive.tag == Wildcard.anyTag || receive.tag == envelope.tag)
    }

    func post(_ envelope: Envelope) {
        log.append(InProcessGroup.Message(source: envelope.source, destination: envelope.destination, tag: envelope.tag,
                                          bytes: envelope.payload.count, group: envelope.group))
        if let index = posted.firstIndex(where: { matches(envelope, $0) }) {
            posted.remove(at: index).deliver(envelope)
        } else {
            mailbox.append(envelope)
        }
        condition.broadcast()
    }

    func post(_ receive: PendingReceive) {
        if let index = mailbox.firstIndex(where: { matches($0, receive) }) {
            receive.deliver(mailbox.remove(at: index))
        } else {
            posted.append(receive)
        }
    }

    /// The oldest waiting message that a receive from `source` with `tag` would match.
    func peek(group: Int, destination: Int, source: Int, tag: Int) -> MessageStatus? {
        mailbox.first { envelope in
            envelope.group == group && envelope.destination == destination
                && (source == Wildcard.anySource || source == envelope.source)
                && (tag == Wildcard.anyTag || tag == envelope.tag)
        }.map { MessageStatus(source: $0.source, tag: $0.tag, byteCount: $0.payload.count) }
    }

    // MARK: Collectives (call with the lock held)

    struct RendezvousKey: Hashable {
        let group: Int
        let sequence: Int
    }

    final class Rendezvous {
        var contributions: [Any?]
        var arrived = 0
        var result: Any?
        var collected = 0
        var latestClock = 0.0
        init(size: Int) { contributions = Array(repeating: nil, count: size) }
    }

    /// Every member of a group of `size` contributes once under the same key; the
    /// last to arrive combines the contributions (in rank order) and every member
    /// gets the same result.
    func gather<R>(_ key: RendezvousKey, size: Int, rank: Int, worldRank: Int, what: String,
                   contribution: Any, combine: ([Any]) -> R) -> R {
        let meeting = rendezvous[key] ?? Rendezvous(size: size)
        rendezvous[key] = meeting
        precondition(meeting.contributions[rank] == nil, "rank \(rank) joined \(what) twice")
        meeting.contributions[rank] = contribution
        meeting.arrived += 1
        meeting.latestClock = max(meeting.latestClock, scheduler.clock(of: worldRank))
        if meeting.arrived == size {
            meeting.result = combine(meeting.contributions.map { $0! })
            condition.broadcast()
        }
        scheduler.block(worldRank, on: condition, waitingFor: what) { meeting.result != nil }
        // A collective ends when its last member arrives.
        scheduler.advanceClock(of: worldRank, to: meeting.latestClock)
        meeting.collected += 1
        if meeting.collected == size { rendezvous[key] = nil }
        return meeting.result as! R
    }

    func newGroupID() -> Int {
        defer { nextGroupID += 1 }
        return nextGroupID
    }
}

/// A receive that has been posted and not yet matched, or has just been.
final class PendingReceive: Transfer, @unchecked Sendable {
    // @unchecked Sendable: written under the fabric's lock by whichever thread
    // delivers the message; read by the owner after taking the same lock.
    let fabric: Fabric
    let group: Int
    let destination: Int
    let worldRank: Int
    let source: Int
    let tag: Int
    let buffer: UnsafeMutableRawBufferPointer
    private var keepAlive: AnyObject?
    private(set) var delivered = false
    private var matched: MessageStatus?

    init(fabric: Fabric, group: Int, destination: Int, worldRank: Int, source: Int, tag: Int,
         buffer: UnsafeMutableRawBufferPointer, keepAlive: AnyObject?) {
        self.fabric = fabric
        self.group = group
        self.destination = destination
        self.worldRank = worldRank
        self.source = source
        self.tag = tag
        self.buffer = buffer
        self.keepAlive = keepAlive
    }

    /// Called with the fabric's lock held.
    func deliver(_ envelope: Fabric.Envelope) {
        guard envelope.payload.count <= buffer.count else {
            fatalError("in-process rank \(destination) of group \(group): a message of \(envelope.payload.count) bytes "
                       + "from rank \(envelope.source) (tag \(envelope.tag)) does not fit the \(buffer.count)-byte receive")
        }
        envelope.payload.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[0..<$0.count]).copyMemory(from: $0) }
        matched = MessageStatus(source: envelope.source, tag: envelope.tag, byteCount: envelope.payload.count)
        delivered = true
        keepAlive = nil
        fabric.scheduler.advanceClock(of: worldRank, to: envelope.sentAt)
    }

    func wait() {
        fabric.locked {
            fabric.scheduler.block(worldRank, on: fabric.condition,
                                   waitingFor: "a message from \(source == Wildcard.anySource ? "any rank" : "rank \(source)") "
                                       + "with tag \(tag == Wildcard.anyTag ? "any" : "\(tag)") in group \(group)") { self.delivered }
        }
    }

    func test() -> Bool {
        fabric.locked {
            if !delivered { fabric.scheduler.yield(worldRank, on: fabric.condition) }
            return delivered
        }
    }

    var status: MessageStatus? { fabric.locked { matched } }
}

/// A buffered send: complete as soon as it is started.
final class CompletedSend: Transfer {
    func wait() {}
    func test() -> Bool { true }
    var status: MessageStatus? { nil }
}
