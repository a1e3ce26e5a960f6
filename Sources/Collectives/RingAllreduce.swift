import ChorusMPI

/// Bandwidth-optimal ring all-reduce: a reduce-scatter followed by an all-gather,
/// both around the ring `0 → 1 → … → p-1 → 0` (after baidu-allreduce).
///
/// The buffer is cut into p chunks (`Chunking`; sizes differ by at most one). Each
/// rank sends only to its right neighbour and receives only from its left, so every
/// link carries one chunk per step in each phase. For p = 3, chunks a, b, c:
///
///     reduce-scatter: at step s rank r sends chunk (r - s) mod p, and adds the chunk
///     (r - s - 1) mod p it receives into its own copy
///
///              rank 0          rank 1          rank 2
///     step 0   sends a         sends b         sends c
///              gets c, c+=     gets a, a+=     gets b, b+=
///     step 1   sends c         sends a         sends b
///              gets b: b done  gets c: c done  gets a: a done
///
///     after p-1 steps rank r owns the fully reduced chunk (r + 1) mod p.
///
///     all-gather: at step s rank r sends chunk (r + 1 - s) mod p and stores the
///     chunk (r - s) mod p it receives; after p-1 more steps every rank has all.
///
/// Cost for n elements of w bytes on p ranks: 2(p-1) messages, and each rank sends
/// (and receives) 2(p-1)/p · n · w bytes, independent of p as p grows; in the
/// alpha-beta model T = 2(p-1)·α + 2(p-1)/p · n·w·β (+ (p-1)/p · n additions).
/// `average` scales each rank's owned chunk once between the phases, so the 1/p costs
/// n/p multiplications per rank rather than a pass over the whole buffer.
///
/// Every rank must pass the same `buffer.count`. A single rank returns at once
/// (after the averaging, which is the identity), so one code path serves 1..N ranks.
@_specialize(exported: true, where T == Float, G == Communicator)
@_specialize(exported: true, where T == Double, G == Communicator)
public func ringAllreduce<T: CollectiveScalar, G: PointToPoint>(_ buffer: UnsafeMutableBufferPointer<T>,
                                                                 _ reduction: Reduction = .sum, over group: G) {
    let p = group.size, r = group.rank
    guard p > 1, buffer.count > 0 else { return }
    let chunks = Chunking(count: buffer.count, parts: p)
    let right = (r + 1) % p, left = (r - 1 + p) % p
    let scratch = UnsafeMutableBufferPointer<T>.allocate(capacity: chunks.largest)
    defer { scratch.deallocate() }

    func chunk(_ index: Int) -> UnsafeMutableBufferPointer<T> {
        UnsafeMutableBufferPointer(rebasing: buffer[chunks.range(((index % p) + p) % p)])
    }

    // Reduce-scatter.
    for step in 0..<(p - 1) {
        let outgoing = chunk(r - step), incoming = chunk(r - step - 1)
        let received = UnsafeMutableBufferPointer(rebasing: scratch[0..<incoming.count])
        group.exchange(send: UnsafeBufferPointer(outgoing), to: right, receive: received, from: left,
                       tag: CollectiveTag.ringReduceScatter)
        Kernels.add(UnsafeBufferPointer(received), into: incoming)
    }
    if reduction == .average {
        Kernels.scale(chunk(r + 1), by: 1 / T(p))
    }
    // All-gather.
    for step in 0..<(p - 1) {
        let outgoing = chunk(r + 1 - step), incoming = chunk(r - step)
        group.exchange(send: UnsafeBufferPointer(outgoing), to: right, receive: incoming, from: left,
                       tag: CollectiveTag.ringAllgather)
    }
}
