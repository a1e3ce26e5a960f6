/// A heap buffer with reference semantics and a stable address, for non-blocking
/// messages: a `Request` holds on to the buffer it reads or writes, so the memory
/// cannot be freed while MPI may still touch it.
public final class MessageBuffer<Element: MPIScalar>: @unchecked Sendable {
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
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    public var array: [Element] { Array(pointer) }
}
