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
