import NeuralNet

/// Which training samples each rank uses at each step.
///
/// Every epoch the whole index range is shuffled with a generator seeded from
/// (seed, epoch), identically on every rank. Global batch t is the slice
/// `perm[t·B·p ..< (t+1)·B·p]`, and rank r takes the r-th block of B from it:
///
///     perm:   | r0 r1 r2 r3 | r0 r1 r2 r3 | ...      (B samples per cell, p = 4)
///               step 0        step 1
///
/// So p ranks with batch B see exactly the samples one process with batch p·B sees,
/// which is what makes data-parallel training equal single-process training. Every
/// rank gets the same number of steps (the last partial global batch is dropped), so
/// no rank waits in a collective that another never reaches.
public struct DistributedSampler: Sendable {
    public let sampleCount: Int
    public let ranks: Int
    public let rank: Int
    public let batchPerRank: Int
    public let seed: UInt64

    public init(sampleCount: Int, ranks: Int, rank: Int, batchPerRank: Int, seed: UInt64) throws {
        precondition(ranks >= 1 && (0..<ranks).contains(rank))
        guard batchPerRank >= 1 else { throw DataError("batch size must be at least 1") }
        let (global, overflow) = batchPerRank.multipliedReportingOverflow(by: ranks)
        guard !overflow, sampleCount >= global else {
            throw DataError("\(sampleCount) training samples are fewer than one global batch (\(ranks) ranks x \(batchPerRank))")
        }
        self.sampleCount = sampleCount
        self.ranks = ranks
        self.rank = rank
        self.batchPerRank = batchPerRank
        self.seed = seed
    }

    public var globalBatch: Int { batchPerRank * ranks }
    public var stepsPerEpoch: Int { sampleCount / globalBatch }

    /// The shuffled order of all samples in `epoch` (the same on every rank).
    public func permutation(epoch: Int) -> [Int] {
        var order = Array(0..<sampleCount)
        var generator = SeededGenerator(seed: seed, stream: 0xE90C + UInt64(epoch))
        // Fisher-Yates with our own generator and bounded draw, so the order is fixed
        // by the seed alone, not by the standard library's shuffle algorithm.
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            let j = Int(generator.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
        return order
    }

    /// This rank's sample indices for `step` of an epoch whose permutation is `order`.
    public func indices(step: Int, of order: [Int]) -> ArraySlice<Int> {
        let start = step * globalBatch + rank * batchPerRank
        return order[start..<(start + batchPerRank)]
    }
}
