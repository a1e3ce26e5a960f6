/// A group of ranks that exchange messages: what every layer above the transport is
/// written against.
///
/// `MPICommunicator` (ChorusMPI) provides it over real MPI processes; the in-process
/// group of `ChorusTesting` provides it with threads standing in for ranks, so the
/// collectives, the data-parallel engine, the pipeline executor, agreement and the
/// training loop all run unchanged on fake ranks in unit tests.
///
/// The requirements are the transport's primitives: non-blocking point-to-point with
/// wildcard matching, probes and wait-any, a handful of small collectives (for
/// control values, and as the baseline Chorus's own collectives are measured
/// against), sub-groups and node-shared memory. Every requirement takes the
/// caller's `SourceLocation` so a failing call is reported at the line that made it
/// (llm.c's `mpiCheck`); the extension below supplies it with `#fileID`/`#line`
/// defaults, so callers write `world.barrier()`.
///
/// Lifetime: communicators made by `split`, `splitByNode` and `duplicate` are freed
/// by `release()`, which like their creation is collective: every rank of the group
/// calls it at the same point. Nothing collective ever happens in `deinit` (a
/// communicator dropped on one rank only would otherwise hang the others); one that
/// is never released is reclaimed when the transport shuts down.
public protocol Communicator: AnyObject, Sendable {
    /// This rank's number in the group, 0..<size.
    var rank: Int { get }
    var size: Int { get }

    // MARK: Point-to-point

    /// Starts sending `buffer`, which must stay valid until the transfer completes;
    /// the transfer holds `keepAlive` (the buffer's owner, if any) until then.
    func startSend<T: MessageScalar>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int,
                                     keepAlive: AnyObject?, at location: SourceLocation) -> any Transfer

    /// Starts receiving into `buffer`, which must stay valid until the transfer
    /// completes. `source` may be `Wildcard.anySource` and `tag` `Wildcard.anyTag`;
    /// the completed transfer's `status` says which message matched. The transfer
    /// holds `keepAlive` until it completes.
    func startReceive<T: MessageScalar>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int,
                                        keepAlive: AnyObject?, at location: SourceLocation) -> any Transfer

    /// Sends `sendBuffer` to `destination` while receiving `receiveBuffer` from
    /// `source`, without deadlock whichever side starts first. Either may be empty;
    /// both sides must agree on the lengths. (A default built on the two above is
    /// provided; MPI has a single call for it.)
    func exchange<T: MessageScalar>(send sendBuffer: UnsafeBufferPointer<T>, to destination: Int,
                                    receive receiveBuffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                    tag: Int, at location: SourceLocation)

    /// Blocks until a message matching `source` and `tag` (wildcards allowed) can be
    /// received, and describes it without receiving it.
    func probe(from source: Int, tag: Int, at location: SourceLocation) -> MessageStatus

    /// The next matching message if one has arrived, without blocking.
    func poll(from source: Int, tag: Int, at location: SourceLocation) -> MessageStatus?

    /// Blocks until one of `transfers` has completed (some may have completed before)
    /// and returns its index. `transfers` must not be empty and must all have been
    /// started on this communicator.
    func waitAny(_ transfers: [any Transfer], at location: SourceLocation) -> Int

    /// The index of a completed transfer among `transfers`, or nil if none has
    /// completed yet; drives the transport's progress like `Transfer.test`.
    func testAny(_ transfers: [any Transfer], at location: SourceLocation) -> Int?

    // MARK: The transport's own collectives

    func barrier(at location: SourceLocation)

    /// The transport's all-reduce in place (`MPI_Allreduce`): for small control values
    /// and as the baseline of Chorus's own algorithms (`Collectives`).
    func allreduce<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp, at location: SourceLocation)

    /// The transport's broadcast from `root` (`MPI_Bcast`).
    func broadcast<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int, at location: SourceLocation)

    /// Every rank's `value`, in rank order.
    func allgather<T: MessageScalar>(_ value: T, at location: SourceLocation) -> [T]

    /// Every rank's bytes (any length, possibly different per rank), in rank order.
    func allgatherBytes(_ bytes: [UInt8], at location: SourceLocation) -> [[UInt8]]

    // MARK: Groups

    /// Sub-groups of the ranks passing the same `color`, numbered by `key` (ties by
    /// rank). A rank passing nil joins no group and gets nil. Collective.
    func split(color: Int?, key: Int, at location: SourceLocation) -> (any Communicator)?

    /// The ranks that share memory with this one (one node), numbered by rank. Collective.
    func splitByNode(at location: SourceLocation) -> any Communicator

    /// The same ranks in a new group whose messages never match this one's: for
    /// traffic in the background, like gradient buckets on a communication thread.
    /// Collective.
    func duplicate(at location: SourceLocation) -> any Communicator

    /// `bytesPerRank` bytes per rank that every rank of the group maps. Every rank of
    /// the group must share memory (a group from `splitByNode`). Collective; freed by
    /// the memory's own `release()`.
    func allocateSharedMemory(bytesPerRank: Int, at location: SourceLocation) -> any SharedMemory

    /// Frees the group. Collective; the world group is never freed.
    func release(at location: SourceLocation)

    // MARK: Progress and failure

    /// Lets the transport advance transfers in flight. Code that waits outside the
    /// transport (a spin on shared memory) must call it now and then: a peer's large
    /// send completes only when this rank's progress engine acknowledges it.
    func progress(at location: SourceLocation)

    /// Ends the whole job with `message`: for misuse that would otherwise hang or
    /// silently corrupt results (ranks disagreeing on a length), and for a stalled job.
    func abort(_ message: String) -> Never
}

/// The place in Chorus's code that made a call, for error reports.
public struct SourceLocation: Sendable, CustomStringConvertible {
    public let file: StaticString
    public let line: UInt

    public init(file: StaticString, line: UInt) {
        self.file = file
        self.line = line
    }

    public var description: String { "\(file):\(line)" }
}

/// Wildcards for `startReceive`, `probe` and `poll`.
public enum Wildcard {
    /// Match a message from any rank.
    public static let anySource = -1
    /// Match a message with any tag.
    public static let anyTag = -1
}

// The calls as callers write them: the location is the caller's line.
extension Communicator {
    public func startSend<T: MessageScalar>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int = 0,
                                            file: StaticString = #fileID, line: UInt = #line) -> any Transfer {
        startSend(buffer, to: destination, tag: tag, keepAlive: nil, at: SourceLocation(file: file, line: line))
    }

    public func startReceive<T: MessageScalar>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int = 0,
                                               file: StaticString = #fileID, line: UInt = #line) -> any Transfer {
        startReceive(into: buffer, from: source, tag: tag, keepAlive: nil, at: SourceLocation(file: file, line: line))
    }

    public func exchange<T: MessageScalar>(send sendBuffer: UnsafeBufferPointer<T>, to destination: Int,
                                           receive receiveBuffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                           tag: Int = 0, file: StaticString = #fileID, line: UInt = #line) {
        exchange(send: sendBuffer, to: destination, receive: receiveBuffer, from: source, tag: tag,
                 at: SourceLocation(file: file, line: line))
    }

    /// The exchange as a receive and a send in flight together.
    public func exchange<T: MessageScalar>(send sendBuffer: UnsafeBufferPointer<T>, to destination: Int,
                                           receive receiveBuffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                           tag: Int, at location: SourceLocation) {
        let receive = startReceive(into: receiveBuffer, from: source, tag: tag, keepAlive: nil, at: location)
        let send = startSend(sendBuffer, to: destination, tag: tag, keepAlive: nil, at: location)
        receive.wait()
        send.wait()
    }

    public func probe(from source: Int = Wildcard.anySource, tag: Int = Wildcard.anyTag,
                      file: StaticString = #fileID, line: UInt = #line) -> MessageStatus {
        probe(from: source, tag: tag, at: SourceLocation(file: file, line: line))
    }

    public func poll(from source: Int = Wildcard.anySource, tag: Int = Wildcard.anyTag,
                     file: StaticString = #fileID, line: UInt = #line) -> MessageStatus? {
        poll(from: source, tag: tag, at: SourceLocation(file: file, line: line))
    }

    public func waitAny(_ transfers: [any Transfer], file: StaticString = #fileID, line: UInt = #line) -> Int {
        waitAny(transfers, at: SourceLocation(file: file, line: line))
    }

    public func testAny(_ transfers: [any Transfer], file: StaticString = #fileID, line: UInt = #line) -> Int? {
        testAny(transfers, at: SourceLocation(file: file, line: line))
    }

    public func barrier(file: StaticString = #fileID, line: UInt = #line) {
        barrier(at: SourceLocation(file: file, line: line))
    }

    public func allreduce<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp = .sum,
                                            file: StaticString = #fileID, line: UInt = #line) {
        allreduce(buffer, op: op, at: SourceLocation(file: file, line: line))
    }

    /// The transport's all-reduce of one value.
    public func allreduce<T: MessageScalar>(_ value: T, op: ReduceOp, file: StaticString = #fileID, line: UInt = #line) -> T {
        var result = value
        withUnsafeMutablePointer(to: &result) { pointer in
            allreduce(UnsafeMutableBufferPointer(start: pointer, count: 1), op: op, at: SourceLocation(file: file, line: line))
        }
        return result
    }

    public func broadcast<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int = 0,
                                            file: StaticString = #fileID, line: UInt = #line) {
        broadcast(buffer, root: root, at: SourceLocation(file: file, line: line))
    }

    public func allgather<T: MessageScalar>(_ value: T, file: StaticString = #fileID, line: UInt = #line) -> [T] {
        allgather(value, at: SourceLocation(file: file, line: line))
    }

    public func allgatherBytes(_ bytes: [UInt8], file: StaticString = #fileID, line: UInt = #line) -> [[UInt8]] {
        allgatherBytes(bytes, at: SourceLocation(file: file, line: line))
    }

    public func split(color: Int?, key: Int, file: StaticString = #fileID, line: UInt = #line) -> (any Communicator)? {
        split(color: color, key: key, at: SourceLocation(file: file, line: line))
    }

    public func splitByNode(file: StaticString = #fileID, line: UInt = #line) -> any Communicator {
        splitByNode(at: SourceLocation(file: file, line: line))
    }

    public func duplicate(file: StaticString = #fileID, line: UInt = #line) -> any Communicator {
        duplicate(at: SourceLocation(file: file, line: line))
    }

    public func allocateSharedMemory(bytesPerRank: Int, file: StaticString = #fileID, line: UInt = #line) -> any SharedMemory {
        allocateSharedMemory(bytesPerRank: bytesPerRank, at: SourceLocation(file: file, line: line))
    }

    public func release(file: StaticString = #fileID, line: UInt = #line) {
        release(at: SourceLocation(file: file, line: line))
    }

    public func progress(file: StaticString = #fileID, line: UInt = #line) {
        progress(at: SourceLocation(file: file, line: line))
    }

    /// True on every rank when `ok` is true on every rank: how ranks that each
    /// validated something locally (a file, a flag) decide together to stop, so no
    /// rank is left waiting in a collective the others never reach.
    public func allAgree(_ ok: Bool, file: StaticString = #fileID, line: UInt = #line) -> Bool {
        allreduce(Int32(ok ? 1 : 0), op: .min, file: file, line: line) == 1
    }
}
