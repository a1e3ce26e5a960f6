import Communication

/// Latency-optimal all-reduce for small messages: recursive doubling, with the
/// standard fold-in for rank counts that are not powers of two (as in MPICH).
///
/// With p' the largest power of two ≤ p and e = p − p' extra ranks:
///
///     1. fold in:  among ranks 0 … 2e−1, each even rank sends its vector to the odd
///                  rank above it and sits out; p' ranks remain.
///     2. doubling: in round k the remaining ranks exchange their whole vector with
///                  the partner whose (renumbered) rank differs in bit k and add it:
///
///                      round 0: 0↔1  2↔3  …     round 1: 0↔2  1↔3  …   (log2 p' rounds)
///
///     3. fold out: each odd rank of step 1 sends the result back to its even partner.
///
/// Cost for n elements of w bytes: (log2 p' + 2·[e > 0]) message rounds of n·w bytes,
/// T = (⌈log2 p⌉ + 2·[e > 0])·(α + n·w·β): fewest latencies, but every rank moves the
/// whole vector each round, so it is for small messages only.
///
/// Both partners of an exchange compute the same sum (floating-point addition is
/// commutative), so every rank ends with bitwise the same result. Each message
/// carries the sender's element count in an 8-byte header (as many elements as
/// that takes), so ranks passing different lengths are caught at their first
/// exchange, at no extra round trip.
@_specialize(exported: true, where T == Float)
@_specialize(exported: true, where T == Double)
@_specialize(exported: true, where T == Float16)
@_specialize(exported: true, where T == BFloat16)
public func recursiveDoublingAllreduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>,
                                                                              _ reduction: Reduction = .sum,
                                                                              over group: any Communicator) {
    let p = group.size, n = buffer.count
    guard p > 1 else { return }
    var powerOfTwo = 1
    while powerOfTwo * 2 <= p { powerOfTwo *= 2 }

    let header = countHeaderElements(T.self)
    Scratch.withBuffer(of: T.self, count: 2 * (n + header)) { scratch in
        recursiveDoubling(buffer, reduction, over: group, powerOfTwo: powerOfTwo,
                          outgoing: UnsafeMutableBufferPointer(rebasing: scratch[0..<(n + header)]),
                          incoming: UnsafeMutableBufferPointer(rebasing: scratch[(n + header)...]))
    }
}

/// Elements of `T` that hold the 8-byte element count heading every message.
private func countHeaderElements<T>(_: T.Type) -> Int { max(1, 8 / MemoryLayout<T>.stride) }

/// The three phases, with message buffers of header + n elements.
private func recursiveDoubling<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>,
                                                                      _ reduction: Reduction, over group: any Communicator, powerOfTwo: Int,
                                                                      outgoing: UnsafeMutableBufferPointer<T>,
                                                                      incoming: UnsafeMutableBufferPointer<T>) {
    let p = group.size, r = group.rank, n = buffer.count
    let extra = p - powerOfTwo
    let header = countHeaderElements(T.self)
    // The count as raw bytes: exact in every element type, float16 included.
    UnsafeMutableRawPointer(outgoing.baseAddress!).storeBytes(of: Int64(n), as: Int64.self)
    let data = UnsafeMutableBufferPointer(rebasing: outgoing[header...])
    _ = data.update(fromContentsOf: buffer)
    let received = UnsafeMutableBufferPointer(rebasing: incoming[header...])

    func checkLength(from peer: Int) {
        let theirs = Int(UnsafeRawPointer(incoming.baseAddress!).loadUnaligned(as: Int64.self))
        if theirs != n {
            group.abort("recursive-doubling all-reduce: ranks disagree on the element count: rank \(r) has \(n), rank \(peer) has \(theirs); every rank must pass the same length")
        }
    }

    /// Exchanges whole messages with `peer` and adds theirs into ours.
    func exchangeAndAdd(with peer: Int) {
        // A shorter message from a peer with a smaller count arrives fine; a longer
        // one is an MPI truncation error, reported with the call site.
        group.exchange(send: UnsafeBufferPointer(outgoing), to: peer, receive: incoming, from: peer,
                       tag: CollectiveTag.recursiveDoubling)
        checkLength(from: peer)
        T.add(UnsafeBufferPointer(received), into: data, scale: .one)
    }

    // 1. Fold the extra ranks in.
    var newRank: Int
    if r < 2 * extra {
        if r % 2 == 0 {
            let send = group.startSend(UnsafeBufferPointer(outgoing), to: r + 1, tag: CollectiveTag.recursiveDoubling)
            send.wait()
            newRank = -1
        } else {
            group.startReceive(into: incoming, from: r - 1, tag: CollectiveTag.recursiveDoubling).wait()
            checkLength(from: r - 1)
            T.add(UnsafeBufferPointer(received), into: data, scale: .one)
            newRank = r / 2
        }
    } else {
        newRank = r - extra
    }

    // 2. Recursive doubling among the power-of-two survivors.
    if newRank >= 0 {
        var mask = 1
        while mask < powerOfTwo {
            let partner = newRank ^ mask
            exchangeAndAdd(with: partner < extra ? partner * 2 + 1 : partner + extra)
            mask <<= 1
        }
    }

    // 3. Fold the result back out to the ranks that sat out.
    if r < 2 * extra {
        if r % 2 == 1 {
            group.startSend(UnsafeBufferPointer(outgoing), to: r - 1, tag: CollectiveTag.recursiveDoubling).wait()
        } else {
            group.startReceive(into: outgoing, from: r + 1, tag: CollectiveTag.recursiveDoubling).wait()
        }
    }
    if reduction == .average { T.scale(data, by: T.reciprocal(of: p)) }
    _ = buffer.update(fromContentsOf: data)
}
