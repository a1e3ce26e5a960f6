import ChorusMPI

/// An error that has already been reported to the user; the ranks exit non-zero
/// without printing it again.
public struct ReportedFailure: Error, CustomStringConvertible {
    public var description: String { "failure already reported" }
    public init() {}
}

extension Communicator {
    /// Runs `body` on every rank and makes the ranks agree on its outcome.
    ///
    /// If it fails on any rank, the lowest failing rank prints its error, and every
    /// rank throws `ReportedFailure`, so the job stops everywhere with one message
    /// instead of some ranks waiting forever in the next collective. For work that can
    /// fail on one rank alone: reading files, writing outputs, checking local state.
    public func together<T>(_ what: String, _ body: () throws -> T) throws -> T {
        let result = Result(catching: body)
        let failed: Bool
        if case .failure = result { failed = true } else { failed = false }
        let firstFailing = Int(mpiAllreduce(Int32(failed ? rank : size), op: .min))
        if firstFailing == size { return try result.get() }
        if firstFailing == rank, case .failure(let error) = result {
            ConsoleLog.error("\(what): \(error)", rank: rank, worldSize: size)
        }
        throw ReportedFailure()
    }
}

extension Communicator {
    /// Compares named configuration fields across all ranks before training. Ranks
    /// started with different flags or files would otherwise call collectives of
    /// different sizes or in a different order and hang; instead every rank stops with
    /// the same error, naming the first field that differs and two ranks that differ.
    public func agreeOnConfiguration(_ fields: [(name: String, value: String)]) throws {
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
        for ((name, a), (_, b)) in zip(first, second) where a != b {
            throw FileError("ranks disagree on \(name): rank 0 has \(a), rank \(other) has \(b); start every rank with the same flags and data")
        }
        throw FileError("ranks 0 and \(other) disagree on their configuration; start every rank with the same flags and data")
    }
}
