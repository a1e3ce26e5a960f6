/// A heap buffer with reference semantics and a stable address, for non-blocking
/// messages: a transfer started from it holds on to it (`keepAlive`), so the memory
/// cannot be freed while the transport may still touch it.
public final class MessageBuffer<Element: MessageScalar>: @unchecked Sendable {
    // @unchecked: the buffer is handed between the thread that fills it and the
    // transport; ordering is the transfer's (start happens before completion), and
    // no two parties write it at once by the protocols that use it.
    public let pointer: UnsafeMutableBufferPointer<Element>

    public init(count: Int, repeating value: Element) {
        pointer = .allocate(capacity: count)
        pointer.initialize(repeating: value)
    }

    public init<S: Sequence>(_ elements: S) where S.Element == Element {
        let array = Array(elements)
        pointer = .allocate(capacity: array.count)
        _ = pointer.initialize(from: array)
    }

    deinit { pointer.deallocate() }

    public var count: Int { pointer.count }

    public subscript(i: Int) -> Element {
        get {
            precondition(pointer.indices.contains(i), "index \(i) outside a message buffer of \(count)")
            return pointer[i]
        }
        set {
            precondition(pointer.indices.contains(i), "index \(i) outside a message buffer of \(count)")
            pointer[i] = newValue
        }
    }

    public var array: [Element] { Array(pointer) }
}

extension Communicator {
    /// Starts sending `buffer[range]` (all of it by default); the transfer keeps the
    /// buffer alive until it completes.
    public func startSend<T>(_ buffer: MessageBuffer<T>, range: Range<Int>? = nil, to destination: Int, tag: Int = 0,
                             file: StaticString = #fileID, line: UInt = #line) -> any Transfer {
        let slice = buffer.slice(range)
        return startSend(UnsafeBufferPointer(slice), to: destination, tag: tag, keepAlive: buffer,
                         at: SourceLocation(file: file, line: line))
    }

    /// Starts receiving into `buffer[range]` (all of it by default); the transfer
    /// keeps the buffer alive until it completes.
    public func startReceive<T>(into buffer: MessageBuffer<T>, range: Range<Int>? = nil, from source: Int, tag: Int = 0,
                                file: StaticString = #fileID, line: UInt = #line) -> any Transfer {
        startReceive(into: buffer.slice(range), from: source, tag: tag, keepAlive: buffer,
                     at: SourceLocation(file: file, line: line))
    }
}

extension MessageBuffer {
    fileprivate func slice(_ range: Range<Int>?) -> UnsafeMutableBufferPointer<Element> {
        let r = range ?? 0..<count
        precondition(r.lowerBound >= 0 && r.upperBound <= count, "range \(r) outside a message buffer of \(count)")
        return UnsafeMutableBufferPointer(rebasing: pointer[r])
    }
}
