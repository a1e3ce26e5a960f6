import Communication

/// Ordered reduction: a chain through the ranks in rank order. Rank 0 folds its own
/// terms into `buffer` (which starts as the identity, e.g. zeros), sends it to rank 1,
/// which folds its terms into what it received and sends it on, and so on; the last
/// rank broadcasts the total. The result is bitwise the sequential fold of every
/// rank's terms in rank order, however many ranks there are, which no tree or ring
/// can promise for floating-point sums (their order changes with the rank count).
/// That is the point: a federated round's average is the same at 1, 2 and 3 ranks.
///
///     T = (p−1)·(α + n·w·β) + broadcast  (the folds run one after another)
///
/// against a ring all-reduce's 2(p−1)·α + 2·(p−1)/p·n·w·β: worth it where the terms
/// take far longer to produce than to pass on (a client's local training against
/// one model-sized message), not for gradient buckets. Every rank must call it with
/// the same length (checked); `fold` runs once on each rank, in rank order.
public func orderedReduce<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, over group: any Communicator,
                                            fold: (UnsafeMutableBufferPointer<T>) throws -> Void) rethrows {
    let p = group.size, rank = group.rank
    group.checkSameLengthAsNeighbours(buffer.count, operation: "ordered reduce")
    if rank > 0 {
        group.startReceive(into: buffer, from: rank - 1, tag: CollectiveTag.chain).wait()
    }
    try fold(buffer)
    if rank < p - 1 {
        group.startSend(UnsafeBufferPointer(buffer), to: rank + 1, tag: CollectiveTag.chain).wait()
    }
    if p > 1 { group.broadcast(buffer, root: p - 1) }
}
