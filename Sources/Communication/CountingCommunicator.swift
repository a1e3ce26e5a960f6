import Foundation

/// A communicator that counts the bytes this rank sends: every call goes to the
/// wrapped one, and point-to-point sends (the traffic of Chorus's own collectives)
/// add their size to `counter`. Groups made from it (split, duplicate, by node) count
/// into the same counter, so a collective's node stages and leader ring are all
/// counted. The transport's own collectives and shared memory are not: their bytes
/// are the transport's business. What `bytes_sent_per_step` reports.
public final class CountingCommunicator: Communicator {
    /// Bytes sent, shared by a communicator and the groups made from it.
    public final class Counter: @unchecked Sendable {
        // @unchecked Sendable: `lock` guards `total`; the communication thread adds
        // while the main thread may read between steps.
        private let lock = NSLock()
        private var total = 0

        public init() {}

        public var bytes: Int {
            lock.lock()
            defer { lock.unlock() }
            return total
        }

        func add(_ bytes: Int) {
            lock.lock()
            total += bytes
            lock.unlock()
        }
    }

    public let wrapped: any Communicator
    public let counter: Counter

    public init(_ wrapped: any Communicator, counter: Counter = Counter()) {
        self.wrapped = wrapped
        self.counter = counter
    }

    public var rank: Int { wrapped.rank }
    public var size: Int { wrapped.size }

    public func startSend<T: MessageScalar>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int,
                                            keepAlive: AnyObject?, at location: SourceLocation) -> any Transfer {
        counter.add(buffer.count * MemoryLayout<T>.stride)
        return wrapped.startSend(buffer, to: destination, tag: tag, keepAlive: keepAlive, at: location)
    }

    public func startReceive<T: MessageScalar>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int,
                                               keepAlive: AnyObject?, at location: SourceLocation) -> any Transfer {
        wrapped.startReceive(into: buffer, from: source, tag: tag, keepAlive: keepAlive, at: location)
    }

    public func exchange<T: MessageScalar>(send sendBuffer: UnsafeBufferPointer<T>, to destination: Int,
                                           receive receiveBuffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                           tag: Int, at location: SourceLocation) {
        counter.add(sendBuffer.count * MemoryLayout<T>.stride)
        wrapped.exchange(send: sendBuffer, to: destination, receive: receiveBuffer, from: source, tag: tag, at: location)
    }

    public func probe(from source: Int, tag: Int, at location: SourceLocation) -> MessageStatus {
        wrapped.probe(from: source, tag: tag, at: location)
    }

    public func poll(from source: Int, tag: Int, at location: SourceLocation) -> MessageStatus? {
        wrapped.poll(from: source, tag: tag, at: location)
    }

    public func waitAny(_ transfers: [any Transfer], at location: SourceLocation) -> Int {
        wrapped.waitAny(transfers, at: location)
    }

    public func testAny(_ transfers: [any Transfer], at location: SourceLocation) -> Int? {
        wrapped.testAny(transfers, at: location)
    }

    public func barrier(at location: SourceLocation) { wrapped.barrier(at: location) }

    public func allreduce<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp, at location: SourceLocation) {
        wrapped.allreduce(buffer, op: op, at: location)
    }

    public func broadcast<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int, at location: SourceLocation) {
        wrapped.broadcast(buffer, root: root, at: location)
    }

    public func allgather<T: MessageScalar>(_ value: T, at location: SourceLocation) -> [T] {
        wrapped.allgather(value, at: location)
    }

    public func allgatherBytes(_ bytes: [UInt8], at location: SourceLocation) -> [[UInt8]] {
        wrapped.allgatherBytes(bytes, at: location)
    }

    public func split(color: Int?, key: Int, at location: SourceLocation) -> (any Communicator)? {
        wrapped.split(color: color, key: key, at: location).map { CountingCommunicator($0, counter: counter) }
    }

    public func splitByNode(at location: SourceLocation) -> any Communicator {
        CountingCommunicator(wrapped.splitByNode(at: location), counter: counter)
    }

    public func duplicate(at location: SourceLocation) -> any Communicator {
        CountingCommunicator(wrapped.duplicate(at: location), counter: counter)
    }

    public func allocateSharedMemory(bytesPerRank: Int, at location: SourceLocation) -> any SharedMemory {
        wrapped.allocateSharedMemory(bytesPerRank: bytesPerRank, at: location)
    }

    public func release(at location: SourceLocation) { wrapped.release(at: location) }

    public func progress(at location: SourceLocation) { wrapped.progress(at: location) }

    public func abort(_ message: String) -> Never { wrapped.abort(message) }
}
