import Communication

/// Bandwidth-optimal ring all-reduce, pipelined: a reduce-scatter followed by an
/// all-gather around the ring `0 → 1 → … → p-1 → 0` (after baidu-allreduce), with each
/// chunk cut into segments that are forwarded as soon as they are ready.
///
/// The buffer is cut into p chunks c0 … c(p-1) (`Chunking`: sizes differ by at most
/// one). There are 2(p-1) steps; at each, every rank sends one chunk to its right
/// neighbour and receives one from its left:
///
///     reduce-scatter, step t = 0 … p-2:  send c(r-t-1), receive c(r-t-2) and add it in
///     all-gather,     step t = p-1 … :   send c(r-s),   receive c(r-s-1) and store it
///                                        (s = t - (p-1))
///
///     p = 3                 rank 0        rank 1        rank 2
///     t=0 send / add        c2 / c1       c0 / c2       c1 / c0
///     t=1 send / add        c1 / c0 ✓     c2 / c1 ✓     c0 / c2 ✓   (rank r owns c(r))
///     t=2 send / store      c0 / c2       c1 / c0       c2 / c1
///     t=3 send / store      c2 / c1       c0 / c2       c1 / c0     (all have all)
///
/// The chunk received at step t is exactly the chunk sent at step t+1, so instead of
/// finishing a step before starting the next, each chunk is split into segments of
/// about `segmentBytes` and a segment is sent on as soon as it has been added in (or
/// stored). While one segment is being reduced, later segments are arriving and
/// earlier ones are leaving: a receive, a reduction and a send are in flight at once.
/// Receives for step t+1 are posted before step t is processed, into the second of
/// two scratch buffers (double buffering).
///
/// Cost for n elements of w bytes: each rank sends and receives 2(p-1)/p · n·w bytes
/// in 2(p-1)·S messages (S segments per chunk); in the alpha-beta model
/// T ≈ 2(p-1)·α + 2(p-1)/p · n·w·β + (p-1)/p · n·γ, where pipelining hides most of
/// the reduction term γ behind the transfer. `average` folds the 1/p into the last
/// reduce-scatter addition (each rank scales only its own chunk).
///
/// Every rank must pass the same count: the ring neighbours compare counts first and
/// a mismatch ends the job naming the ranks. One rank returns at once.
@_specialize(exported: true, where T == Float)
@_specialize(exported: true, where T == Double)
@_specialize(exported: true, where T == Float16)
@_specialize(exported: true, where T == BFloat16)
public func ringAllreduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>,
                                                                 _ reduction: Reduction = .sum, over group: any Communicator,
                                                                 segmentBytes: Int = RingSchedule.defaultSegmentBytes) {
    group.checkSameLengthAsNeighbours(buffer.count, operation: "ring all-reduce")
    let schedule = RingSchedule(count: buffer.count, ranks: group.size, rank: group.rank,
                                elementBytes: MemoryLayout<T>.stride, segmentBytes: segmentBytes)
    schedule.run(buffer, steps: 0..<schedule.stepCount, reduction, over: group)
}

/// Ring reduce-scatter: afterwards rank r holds the reduced chunk `Chunking(count:
/// buffer.count, parts: p).range(r)` of the buffer (the rest is scratch). Returns
/// that range. Cost: (p-1)/p · n·w bytes sent per rank.
@_specialize(exported: true, where T == Float)
@_specialize(exported: true, where T == Double)
@_specialize(exported: true, where T == Float16)
@_specialize(exported: true, where T == BFloat16)
@discardableResult
public func ringReduceScatter<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>,
                                                                     _ reduction: Reduction = .sum, over group: any Communicator,
                                                                     segmentBytes: Int = RingSchedule.defaultSegmentBytes) -> Range<Int> {
    group.checkSameLengthAsNeighbours(buffer.count, operation: "ring reduce-scatter")
    let schedule = RingSchedule(count: buffer.count, ranks: group.size, rank: group.rank,
                                elementBytes: MemoryLayout<T>.stride, segmentBytes: segmentBytes)
    schedule.run(buffer, steps: 0..<(group.size - 1), reduction, over: group)
    return schedule.chunks.range(group.rank)
}

/// Ring all-gather: rank r provides chunk `Chunking(count: buffer.count, parts:
/// p).range(r)` in place and receives every other chunk. Cost: (p-1)/p · n·w bytes
/// sent per rank. Nothing is combined, so any message scalar travels (gradient
/// compression gathers index/value pairs as `Int32`).
@_specialize(exported: true, where T == Float)
@_specialize(exported: true, where T == Int32)
public func ringAllgather<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, over group: any Communicator,
                                            segmentBytes: Int = RingSchedule.defaultSegmentBytes) {
    group.checkSameLengthAsNeighbours(buffer.count, operation: "ring all-gather")
    let schedule = RingSchedule(count: buffer.count, ranks: group.size, rank: group.rank,
                                elementBytes: MemoryLayout<T>.stride, segmentBytes: segmentBytes)
    schedule.gather(buffer, over: group)
}

/// Which chunk and segment moves at each step of the ring; `run` executes a range of
/// steps (all of them, the reduce-scatter half or the all-gather half).
public struct RingSchedule {
    /// 256 KiB segments: large enough that per-message overhead (a few µs) is small
    /// next to the transfer (~50 µs at shared-memory speed), small enough that a
    /// 4 MiB chunk has 16 segments to pipeline and a segment's reduction stays in L2.
    public static let defaultSegmentBytes = 256 << 10

    let ranks: Int
    let rank: Int
    let chunks: Chunking
    /// Segments per chunk; the same on every rank (derived from count and ranks).
    let segmentsPerChunk: Int

    init(count: Int, ranks: Int, rank: Int, elementBytes: Int, segmentBytes: Int) {
        self.ranks = ranks
        self.rank = rank
        chunks = Chunking(count: count, parts: ranks)
        let chunkBytes = chunks.largest * elementBytes
        segmentsPerChunk = max(1, (chunkBytes + max(segmentBytes, 1) - 1) / max(segmentBytes, 1))
    }

    var stepCount: Int { 2 * (ranks - 1) }

    private func mod(_ i: Int) -> Int { ((i % ranks) + ranks) % ranks }

    /// The chunk this rank receives at `step` (and sends at step + 1).
    func incomingChunk(_ step: Int) -> Int {
        step < ranks - 1 ? mod(rank - step - 2) : mod(rank - (step - (ranks - 1)) - 1)
    }

    /// The chunk this rank sends at `step`.
    func outgoingChunk(_ step: Int) -> Int {
        step < ranks - 1 ? mod(rank - step - 1) : mod(rank - (step - (ranks - 1)))
    }

    /// Element range of segment `k` of chunk `c`.
    func segment(_ k: Int, of c: Int) -> Range<Int> {
        let chunk = chunks.range(c)
        let part = Chunking(count: chunk.count, parts: segmentsPerChunk).range(k)
        return (chunk.lowerBound + part.lowerBound)..<(chunk.lowerBound + part.upperBound)
    }

    func run<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, steps: Range<Int>,
                                  _ reduction: Reduction, over group: any Communicator) {
        let lastReduceStep = ranks - 2
        move(buffer, steps: steps, over: group) { incoming, own, step in
            let scale: T = (reduction == .average && step == lastReduceStep) ? T.reciprocal(of: ranks) : .one
            T.add(incoming, into: own, scale: scale)
        }
    }

    /// The all-gather steps only move elements, so they take any message scalar.
    func gather<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, over group: any Communicator) {
        move(buffer, steps: (ranks - 1)..<stepCount, over: group) { _, _, _ in
            preconditionFailure("the all-gather steps never combine")
        }
    }

    /// Runs `steps`; a reduce-scatter step hands each incoming segment and the
    /// buffer's segment it lands on to `combine`.
    private func move<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, steps: Range<Int>, over group: any Communicator,
                                        combine: (UnsafeBufferPointer<T>, UnsafeMutableBufferPointer<T>, _ step: Int) -> Void) {
        guard ranks > 1, chunks.count > 0, !steps.isEmpty else { return }
        // Two scratch buffers for incoming reduce-scatter chunks (step parity); the
        // all-gather half receives straight into the buffer and needs none.
        let reduces = steps.lowerBound < ranks - 1
        Scratch.withBuffer(of: T.self, count: reduces ? 2 * chunks.largest : 0) { scratch in
            move(buffer, scratch: scratch, steps: steps, over: group, combine: combine)
        }
    }

    private func move<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, scratch: UnsafeMutableBufferPointer<T>,
                                        steps: Range<Int>, over group: any Communicator,
                                        combine: (UnsafeBufferPointer<T>, UnsafeMutableBufferPointer<T>, _ step: Int) -> Void) {
        let right = mod(rank + 1), left = mod(rank - 1)
        let tag = CollectiveTag.ring

        /// Where segment k of step t's incoming chunk lands: scratch while reducing,
        /// the buffer itself while gathering.
        func landing(_ step: Int, _ k: Int) -> UnsafeMutableBufferPointer<T> {
            let range = segment(k, of: incomingChunk(step))
            guard step < ranks - 1 else { return UnsafeMutableBufferPointer(rebasing: buffer[range]) }
            let base = (step % 2) * chunks.largest - chunks.range(incomingChunk(step)).lowerBound
            return UnsafeMutableBufferPointer(rebasing: scratch[(base + range.lowerBound)..<(base + range.upperBound)])
        }

        func postReceives(_ step: Int) -> [Transfer] {
            (0..<segmentsPerChunk).map { group.startReceive(into: landing(step, $0), from: left, tag: tag) }
        }

        var sends: [Transfer] = []
        sends.reserveCapacity(steps.count * segmentsPerChunk)
        // The first step's outgoing chunk is already complete: send all of it.
        for k in 0..<segmentsPerChunk {
            let range = segment(k, of: outgoingChunk(steps.lowerBound))
            sends.append(group.startSend(UnsafeBufferPointer(rebasing: buffer[range]), to: right, tag: tag))
        }
        var receives = postReceives(steps.lowerBound)
        for step in steps {
            let next = step + 1 < steps.upperBound ? postReceives(step + 1) : []
            for k in 0..<segmentsPerChunk {
                receives[k].wait()
                let range = segment(k, of: incomingChunk(step))
                if step < ranks - 1 {
                    combine(UnsafeBufferPointer(landing(step, k)), UnsafeMutableBufferPointer(rebasing: buffer[range]), step)
                }
                if step + 1 < steps.upperBound {
                    sends.append(group.startSend(UnsafeBufferPointer(rebasing: buffer[range]), to: right, tag: tag))
                }
            }
            receives = next
        }
        for send in sends { send.wait() }
    }
}
