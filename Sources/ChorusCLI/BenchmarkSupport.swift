import Foundation

#if canImport(Glibc)
import Glibc
#endif

// What the benchmark executables share: a clock and the pieces of their tables.

/// The middle of `values` (the mean of the two middle ones for an even count): what
/// a benchmark reports from its rounds when how a round falls is part of the cost.
public func median(_ values: [Double]) -> Double {
    precondition(!values.isEmpty, "median of no values")
    let sorted = values.sorted(), middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// Right-aligns to `width` (left-aligns when negative), with at least one space
/// after text that does not fit.
public func pad(_ text: String, _ width: Int) -> String {
    let room = abs(width) - text.count
    guard room > 0 else { return text + " " }
    let spaces = String(repeating: " ", count: room)
    return width > 0 ? spaces + text : text + spaces
}
