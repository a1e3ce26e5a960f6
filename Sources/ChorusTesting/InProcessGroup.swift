import Communication
import Foundation

/// Threads standing in for ranks, so code written against `Communicator` runs in one
/// process (like swift-nio's `EmbeddedEventLoop`): collectives, the data-parallel
/// engine, the pipeline executor, agreement and whole training runs.
///
/// `run` starts one thread per rank, each with its own `InProcessCommunicator`, and
/// returns when all have finished. Every message is logged, so a test can assert the
/// traffic (how many messages, which peers, how many bytes) as well as the values.
/// Sub-groups (`split`, `splitByNode`, `duplicate`) and node-shared memory work as
/// on MPI; `nodeSize` sets how many consecutive ranks `splitByNode` puts on a node.
///
/// With `.stepped` scheduling one rank runs at a time and the interleaving is under
/// the test's control (see `Scheduler`): for asynchronous protocols whose behaviour
/// depends on who gets there first.
public final class InProcessGroup: Sendable {
    public enum Scheduling: Sendable {
        /// Every rank a free-running thread.
        case concurrent
        /// One rank at a time, switching where a rank blocks or yields.
        case stepped(StepOrder)
    }

    /// Which rank runs next in stepped mode.
    public enum StepOrder: Sendable {
        /// The rank with the earliest virtual clock, ties to the lowest rank.
        case virtualTime
        /// A reproducible pseudo-random choice among the ranks that can run: many seeds
        /// explore many interleavings, each repeatable.
        case seeded(UInt64)
    }

    /// One logged message. Ranks are numbered within `group` (0: the whole group).
    public struct Message: Equatable, Sendable {
        public let source: Int
        public let destination: Int
        public let tag: Int
        public let bytes: Int
        public let group: Int

        public init(source: Int, destination: Int, tag: Int, bytes: Int, group: Int = 0) {
            self.source = source
            self.destination = destination
            self.tag = tag
            self.bytes = bytes
            self.group = group
        }
    }

    public let size: Int
    let fabric: Fabric

    public init(size: Int, nodeSize: Int? = nil, scheduling: Scheduling = .concurrent) {
        precondition(size >= 1, "a group needs at least one rank")
        precondition(nodeSize.map { $0 >= 1 } ?? true, "a node needs at least one rank")
        self.size = size
        fabric = Fabric(size: size, nodeSize: nodeSize ?? size, scheduling: scheduling)
    }

    /// Every message sent so far, in the order the sends were started.
    public var messages: [Message] { fabric.locked { fabric.log } }

    /// In stepped mode, the rank given control at each switch, in order.
    public var handOffs: [Int] { fabric.locked { fabric.scheduler.handOffs } }

    /// Each rank's virtual clock.
    public var clocks: [Double] { fabric.locked { (0..<size).map(fabric.scheduler.clock(of:)) } }

    /// Runs `body` once per rank, each on its own thread, and returns what each rank
    /// returned, in rank order; if any rank threw, the lowest such rank's error.
    public func run<Value>(timeout: Double = 120,
                           _ body: @escaping @Sendable (InProcessCommunicator) throws -> Value) throws -> [Value] {
        let results: [Result<Value, any Error>] = run(timeout: timeout) { rank in Result { try body(rank) } }
        return try results.map { try $0.get() }
    }

    /// Runs `body` once per rank, each on its own thread, and returns what each rank
    /// returned, in rank order.
    public func run<Value>(timeout: Double = 120, _ body: @escaping @Sendable (InProcessCommunicator) -> Value) -> [Value] {
        let results = RankResults<Value>(count: size)
        run(timeout: timeout) { rank in results.set(rank.rank, body(rank)) }
        return results.values
    }

    /// Runs `body` once per rank, each on its own thread, and returns when all have
    /// finished. A run still going after `timeout` seconds ends the process with a
    /// report of what every rank waits for (a test must fail, never hang). A group
    /// runs once; make a new one for the next run.
    public func run(timeout: Double = 120, _ body: @escaping @Sendable (InProcessCommunicator) -> Void) {
        let world = GroupState(id: 0, members: Array(0..<size))
        let done = DispatchGroup()
        fabric.locked {
            precondition(!fabric.used, "an InProcessGroup runs once; make a new one for the next run")
            fabric.used = true
            fabric.scheduler.start()
        }
        for rank in 0..<size {
            done.enter()
            let thread = Thread { [fabric] in
                fabric.locked { fabric.scheduler.begin(rank, on: fabric.condition) }
                body(InProcessCommunicator(fabric: fabric, group: world, rank: rank))
                fabric.locked { fabric.scheduler.finish(rank, on: fabric.condition) }
                done.leave()
            }
            thread.stackSize = 1 << 23
            thread.name = "fake rank \(rank)"
            thread.start()
        }
        if done.wait(timeout: .now() + timeout) == .timedOut {
            fatalError("in-process ranks still running after \(timeout) s: " + fabric.locked { fabric.scheduler.describe() })
        }
    }
}

/// The ranks of one (sub-)group and its collective sequence numbers.
final class GroupState: @unchecked Sendable {
    // @unchecked Sendable: `id` and `members` are immutable; `sequences` is guarded
    // by the fabric's lock.
    let id: Int
    /// World rank of each group rank.
    let members: [Int]
    /// How many collectives each member has started on this group.
    var sequences: [Int]

    init(id: Int, members: [Int]) {
        self.id = id
        self.members = members
        sequences = Array(repeating: 0, count: members.count)
    }
}

/// One result per rank, written by the ranks' threads and read after they have all
/// finished.
final class RankResults<Value>: @unchecked Sendable {
    // @unchecked Sendable: every access takes the lock, and the values are read only
    // after the threads that wrote them have ended (`run` waits for them).
    private let lock = NSLock()
    private var slots: [Value?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ rank: Int, _ value: Value) {
        lock.lock()
        slots[rank] = value
        lock.unlock()
    }

    var values: [Value] {
        lock.lock()
        defer { lock.unlock() }
        return slots.map { $0! }
    }
}
