import Foundation

/// How numbers read in Chorus's console lines.
public enum Formatting {
    /// `value` with a fixed number of decimals.
    public static func decimals(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }

    /// A fraction as `86.21%`, or `n/a` when it is not a number (nothing was measured).
    public static func percent(_ fraction: Double) -> String { fraction.isNaN ? "n/a" : decimals(fraction * 100, 2) + "%" }

    /// `1.2 MiB`, `340 KiB`, `96 B`.
    public static func bytes(_ bytes: Int) -> String {
        if bytes >= 1 << 20 { return decimals(Double(bytes) / Double(1 << 20), 1) + " MiB" }
        if bytes >= 1 << 10 { return decimals(Double(bytes) / Double(1 << 10), 1) + " KiB" }
        return "\(bytes) B"
    }

    /// `3.2 GB`.
    public static func gigabytes(_ bytes: Int) -> String { decimals(Double(bytes) / 1e9, 1) + " GB" }

    /// `1 rank`, `3 ranks`.
    public static func count(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }
}
