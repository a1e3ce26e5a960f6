import NeuralNet

/// Simulated stragglers, so the consistency models' trade-off can be measured on one
/// machine: a slowed iteration sleeps for (F - 1) times its measured compute time,
/// which frees its core instead of competing for it.
public struct Stragglers: Sendable, Equatable, CustomStringConvertible {
    /// One worker always F times slower: the case where a staleness bound is reached
    /// and only ASP keeps the others going.
    public struct Persistent: Sendable, Equatable {
        /// The worker's rank in the job.
        public let rank: Int
        public let factor: Double

        public init(rank: Int, factor: Double) {
            self.rank = rank
            self.factor = factor
        }
    }

    /// Any worker's iteration F times slower with probability P, drawn per worker and
    /// iteration from the seed: the transient delays SSP absorbs and BSP pays for at
    /// every clock (Cui et al., USENIX ATC 2014).
    public struct Transient: Sendable, Equatable {
        public let probability: Double
        public let factor: Double

        public init(probability: Double, factor: Double) {
            self.probability = probability
            self.factor = factor
        }
    }

    public var persistent: Persistent?
    public var transient: Transient?

    public init(persistent: Persistent? = nil, transient: Transient? = nil) {
        self.persistent = persistent
        self.transient = transient
    }

    /// How many times slower worker `rank`'s iteration `iteration` runs (1: not slowed).
    public func factor(rank: Int, iteration: Int, seed: UInt64) -> Double {
        var factor = 1.0
        if let persistent, persistent.rank == rank { factor *= persistent.factor }
        if let transient {
            // A draw of its own per (worker, iteration): the same whatever the timing.
            // (a stream per pair: ranks below 2^24, iterations below 2^40).
            var generator = SeededGenerator(seed: seed ^ 0x5354_5241_4747_4C45,
                                            stream: UInt64(truncatingIfNeeded: rank) << 40 | UInt64(truncatingIfNeeded: iteration))
            if Double(generator.nextUnitFloat()) < transient.probability { factor *= transient.factor }
        }
        return factor
    }

    public var description: String {
        let parts = [persistent.map { "rank \($0.rank) \($0.factor)x slower" },
                     transient.map { "\($0.factor)x slower with probability \($0.probability)" }].compactMap { $0 }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }
}
