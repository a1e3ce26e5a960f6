import Communication

/// A failure on some rank that every rank of the group has agreed on: what
/// `together` throws on every rank, so the job stops everywhere with one message
/// instead of some ranks waiting forever in the next collective.
public struct GroupFailure: Error, CustomStringConvertible {
    /// What the ranks were doing, e.g. "loading the dataset".
    public let activity: String
    /// The lowest rank (in the group's numbering) on which it failed.
    public let failingRank: Int
    /// The error itself, on that rank; nil on the others, which only know that it failed.
    public let error: (any Error)?

    public init(activity: String, failingRank: Int, error: (any Error)?) {
        self.activity = activity
        self.failingRank = failingRank
        self.error = error
    }

    public var description: String {
        error.map { "\(activity): \($0)" } ?? "\(activity) failed on rank \(failingRank)"
    }
}

extension Communicator {
    /// Runs `body` on every rank and makes the ranks agree on its outcome, with one
    /// small all-reduce.
    ///
    /// If it fails on any rank, every rank throws `GroupFailure`, and the lowest
    /// failing rank's carries its error (the command layer prints it from there).
    /// For work that can fail on one rank alone: reading files, writing outputs,
    /// checking local state. A `GroupFailure` from a nested `together` passes through.
    public func together<T>(_ activity: String, _ body: () throws -> T) throws -> T {
        let result = Result(catching: body)
        let failed: Bool
        if case .failure = result { failed = true } else { failed = false }
        let firstFailing = Int(allreduce(Int32(failed ? rank : size), op: .min))
        if firstFailing == size { return try result.get() }
        if case .failure(let error) = result, let inner = error as? GroupFailure { throw inner }
        if firstFailing == rank, case .failure(let error) = result {
            throw GroupFailure(activity: activity, failingRank: firstFailing, error: error)
        }
        throw GroupFailure(activity: activity, failingRank: firstFailing, error: nil)
    }
}

/// One named setting that every rank must have the same value of.
public struct ConfigurationField: Sendable, Equatable {
    /// The setting's name in the library's terms ("the model", "micro-batches").
    public let name: String
    public let value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// Ranks started with different configurations (different flags or files).
public struct ConfigurationMismatch: Error, CustomStringConvertible {
    /// The first field that differs, or nil when the ranks' lists differ in shape.
    public let field: String?
    public let firstRank: Int
    public let firstValue: String
    public let otherRank: Int
    public let otherValue: String

    public var description: String {
        guard let field else {
            return "ranks \(firstRank) and \(otherRank) disagree on their configuration; start every rank the same way"
        }
        return "ranks disagree on \(field): rank \(firstRank) has \(firstValue), rank \(otherRank) has \(otherValue); "
            + "start every rank with the same configuration and data"
    }
}

extension Communicator {
    /// Compares named configuration fields across all ranks before training. Ranks
    /// started with different flags or files would otherwise call collectives of
    /// different sizes or in a different order and hang; instead every rank throws
    /// the same `ConfigurationMismatch`, naming the first field that differs and two
    /// ranks that differ (baidu-allreduce checks lengths the same way).
    public func agree(on fields: [ConfigurationField]) throws {
        let separator = "\u{1E}", pair = "\u{1F}"
        let mine = fields.map { "\($0.name)\(pair)\($0.value)" }.joined(separator: separator)
        let all = allgatherBytes(Array(mine.utf8)).map { String(decoding: $0, as: UTF8.self) }
        guard let other = all.firstIndex(where: { $0 != all[0] }) else { return }
        func parse(_ text: String) -> [(String, String)] {
            text.components(separatedBy: separator).map { item in
                let parts = item.components(separatedBy: pair)
                return (parts.first ?? "", parts.dropFirst().joined())
            }
        }
        let (first, second) = (parse(all[0]), parse(all[other]))
        for ((name, a), (otherName, b)) in zip(first, second) where name == otherName && a != b {
            throw ConfigurationMismatch(field: name, firstRank: 0, firstValue: a, otherRank: other, otherValue: b)
        }
        throw ConfigurationMismatch(field: nil, firstRank: 0, firstValue: all[0], otherRank: other, otherValue: all[other])
    }
}
