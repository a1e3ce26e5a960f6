import Collectives
import NeuralNet

/// Which clients a round asks, which of them report, and which rank trains whom: a
/// function of the run's seed and the round alone, so every rank computes the same
/// plan without a message, a resumed run repeats it, and the result does not depend
/// on how many ranks there are.
///
/// The round's clients are the first m = max(round(C·K), 1) of a seeded permutation of
/// the K clients (C: the fraction). Each asked client fails to report with probability
/// P (its own seeded draw for the round). With a minimum of M reports the round goes on
/// down the permutation, asking one client more at a time, until M have reported or
/// every client was asked: the server waits for more clients. A client that would
/// miss the round's deadline (`late`, from `ClientTiming`) does not report either.
public struct RoundPlan: Sendable, Equatable {
    public let round: Int
    /// The clients asked, in the order they were asked.
    public let asked: [Int]
    /// The asked clients that report, in ascending order: the order of the sum.
    public let reporting: [Int]
    /// Asked clients that answered too late for the deadline (not in `reporting`).
    public let late: [Int]

    public var dropped: Int { asked.count - reporting.count }

    public init(round: Int, clients: Int, perRound: Int, dropout: Double, minimumReports: Int, seed: UInt64,
                isLate: (Int) -> Bool = { _ in false }) {
        self.round = round
        var generator = SeededGenerator(seed: seed, stream: 0xFED0_1000 &+ UInt64(round))
        let order = Array(0..<clients).shuffled(using: &generator)
        var asked = [Int](), reporting = [Int](), late = [Int]()
        for client in order {
            if asked.count >= perRound && reporting.count >= minimumReports { break }
            asked.append(client)
            if Self.drops(client: client, round: round, probability: dropout, seed: seed) { continue }
            if isLate(client) { late.append(client) } else { reporting.append(client) }
        }
        self.asked = asked
        self.reporting = reporting.sorted()
        self.late = late
    }

    /// Whether `client` fails to report in `round`: its own draw, the same wherever it runs.
    static func drops(client: Int, round: Int, probability: Double, seed: UInt64) -> Bool {
        guard probability > 0 else { return false }
        var generator = SeededGenerator(seed: seed ^ (UInt64(round) &* 0xD1B5_4A32_D192_ED03),
                                        stream: 0xFED0_2000 &+ UInt64(client))
        return Double(generator.next() >> 11) * (1.0 / 9_007_199_254_740_992.0) < probability
    }

    /// The reporting clients rank `rank` of `ranks` trains: a contiguous block of the
    /// sorted list, so the ranks' blocks in rank order are the order of the sum.
    public func trainedBy(rank: Int, of ranks: Int) -> ArraySlice<Int> {
        reporting[Chunking(count: reporting.count, parts: ranks).range(rank)]
    }
}
