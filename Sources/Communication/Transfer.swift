/// A started non-blocking send or receive.
public protocol Transfer: AnyObject {
    /// Blocks until the transfer has completed (its buffer may then be reused).
    func wait()

    /// Whether the transfer has completed, driving the transport's progress.
    func test() -> Bool

    /// For a completed receive: which message it matched. Nil for sends and for
    /// receives that have not completed.
    var status: MessageStatus? { get }
}

/// A message as matched by a receive or seen by a probe.
public struct MessageStatus: Sendable, Equatable {
    public let source: Int
    public let tag: Int
    /// Bytes of payload.
    public let byteCount: Int

    public init(source: Int, tag: Int, byteCount: Int) {
        self.source = source
        self.tag = tag
        self.byteCount = byteCount
    }

    /// The payload's length in elements of `type`.
    public func count<T>(of type: T.Type) -> Int { byteCount / MemoryLayout<T>.stride }
}

extension Array where Element == any Transfer {
    /// Waits for every transfer, in order.
    public func waitAll() {
        for transfer in self { transfer.wait() }
    }
}
