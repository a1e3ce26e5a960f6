import ArgumentParser

/// A size in bytes on the command line: `4`, `4K`, `16M`, `1G` (powers of 1024, as
/// nccl-tests' `-b`/`-e` read them).
public struct ByteCount: ExpressibleByArgument, Comparable, CustomStringConvertible, Sendable {
    public let bytes: Int

    public init(bytes: Int) { self.bytes = bytes }

    public init?(argument: String) {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var digits = argument.uppercased()
        var multiplier = 1
        if digits.hasSuffix("IB") { digits.removeLast(2) } else if digits.hasSuffix("B") { digits.removeLast() }
        if let last = digits.last, let unit = units[last] {
            multiplier = unit
            digits.removeLast()
        }
        guard let value = Int(digits), value >= 0, value <= Int.max / multiplier else { return nil }
        bytes = value * multiplier
    }

    /// `4 B`, `64 KiB`, `16 MiB`: the largest unit that divides the count exactly.
    public var description: String { ByteCount.format(bytes) }

    public static func format(_ bytes: Int) -> String {
        for (unit, size) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] where bytes >= size && bytes % size == 0 {
            return "\(bytes / size) \(unit)"
        }
        return "\(bytes) B"
    }

    public static func < (a: ByteCount, b: ByteCount) -> Bool { a.bytes < b.bytes }
}
