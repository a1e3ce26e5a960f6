/// Splits `count` elements into `parts` contiguous chunks whose sizes differ by at
/// most one: the first `count % parts` chunks get one extra element. With fewer
/// elements than parts the trailing chunks are empty, which the algorithms handle
/// like any other chunk, so every rank follows the same schedule.
public struct Chunking: Sendable, Equatable {
    public let count: Int
    public let parts: Int

    public init(count: Int, parts: Int) {
        precondition(count >= 0 && parts >= 1)
        self.count = count
        self.parts = parts
    }

    /// The element range of chunk `index`.
    public func range(_ index: Int) -> Range<Int> {
        let base = count / parts, extra = count % parts
        let start = index * base + min(index, extra)
        return start..<(start + base + (index < extra ? 1 : 0))
    }

    /// The largest chunk's size.
    public var largest: Int { (count + parts - 1) / parts }
}
