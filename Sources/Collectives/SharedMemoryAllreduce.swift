import CAtomics
import Communication

#if canImport(Glibc)
import Glibc
#endif

/// All-reduce among ranks that share memory, through a shared window instead of
/// messages (the intra-node design of NCCL's and oneCCL's CPU paths).
///
/// Each rank owns a slot of two halves of `pieceBytes` in an MPI shared window. The
/// buffer is processed in pieces of that size, alternating halves:
///
///     piece k:  copy in     rank r copies its piece into half k%2 of its slot
///               ── barrier ─ (the first one also compares element counts)
///               reduce      rank r sums chunk r of the piece over all slots, in rank
///                           order, into its own slot (chunk r: 1/p of the piece)
///               ── barrier ─
///               copy out    every rank copies every chunk j from rank j's slot
///
///     p = 2     slot 0: [a0 | a1]    slot 1: [b0 | b1]
///               reduce: rank 0 writes a0+b0 into slot 0, rank 1 writes a1+b1 into slot 1
///               copy out: both ranks read [a0+b0 | a1+b1]
///
/// Two barriers per piece are enough: a rank can start copying piece k+1 into the
/// other half while slower ranks still copy piece k out, and it cannot reach piece k+2
/// (the same half again) before every rank has arrived at piece k+1's first barrier,
/// which each does only after finishing piece k.
///
/// Cost per rank for n·w bytes: no messages and no system calls; 2·n·w bytes copied
/// plus a 1/p share of the additions, and 2·⌈n·w / pieceBytes⌉ barriers of about a
/// cache-line transfer each (α ≈ 0.2 µs when every rank has a core). Pieces are small
/// enough that a piece is still in cache when it is reduced and copied out.
///
/// Barrier: each rank publishes a rising epoch in its own cache line (release) and
/// waits until every peer's epoch has reached it (acquire). Waiting spins briefly, then
/// yields the core, so oversubscribed nodes (more ranks than cores) still progress,
/// and drives MPI's progress engine: a peer may be stuck in `MPI_Wait` on a large send
/// of an earlier collective that completes only when this rank acknowledges it.
///
/// Every element is summed by exactly one rank, in rank order, so all ranks end with
/// bitwise the same result. One collective at a time per instance (like any MPI
/// collective on one communicator).
public final class SharedMemoryAllreduce {
    /// 256 KiB pieces: a piece, its peers' chunks and the reduction output fit in a
    /// core's 2 MiB L2 here, and the barrier cost (< 1 µs) is under 2% of a piece's
    /// copy time. Measured against 64 KiB and 1 MiB in docs/collectives.md.
    public static let defaultPieceBytes = 256 << 10

    /// Spin this many times (about a microsecond) before yielding the core while
    /// waiting. Measured at 4 ranks on 2 cores: 200 spins made a 4-byte all-reduce take
    /// 13 µs, 32 spins 2.8 µs (a spinning rank burns the time slice its descheduled peer
    /// needs); with a core per rank, yielding returns at once and costs nothing.
    static let spinsBeforeYield = 32

    /// A wait longer than this drives MPI's progress engine, and again at this
    /// interval. Barrier waits are normally a few µs, so this costs nothing then; a
    /// probe on every waiting iteration made a 16 MiB all-reduce 20x slower.
    static let progressIntervalNanoseconds: UInt64 = 20_000

    /// Up to 4 KiB every rank sums the whole message itself after a single barrier
    /// (p·n reads each, trivial at this size) instead of splitting the work, which
    /// costs a second barrier: with more ranks than cores a barrier means every rank
    /// being scheduled once, and that, not arithmetic, is the cost of small messages.
    public static let replicatedReductionBytes = 4 << 10

    /// Epoch in the first cache line, the two count slots in the second.
    static let controlBytes = 128

    let window: any SharedMemory
    /// Every rank's part of the window, looked up once: the barrier's spin and the
    /// slot arithmetic then cost no call (at 4 KiB, a protocol call per lookup took
    /// 12% off the all-reduce's bandwidth).
    private let bases: [UnsafeMutableRawPointer]
    /// The node's ranks: driven for progress while waiting, and named in errors.
    let node: any Communicator
    public let rank: Int
    public let ranks: Int
    public let pieceBytes: Int
    /// World rank of each node rank, for error messages.
    let worldRanks: [Int]
    private var epoch: Int64 = 0
    private var half = 0

    /// Collective over `node`, whose ranks must share memory; `worldRank` is this
    /// rank's number in the job, used to name ranks in errors.
    public init(node: any Communicator, worldRank: Int, pieceBytes: Int = defaultPieceBytes) {
        precondition(pieceBytes >= 64 && pieceBytes % 64 == 0, "piece size must be a positive multiple of 64 bytes")
        rank = node.rank
        ranks = node.size
        worldRanks = node.allgather(Int64(worldRank)).map { Int($0) }
        self.pieceBytes = pieceBytes
        self.node = node
        window = node.allocateSharedMemory(bytesPerRank: Self.controlBytes + 2 * pieceBytes)
        bases = (0..<node.size).map(window.base(of:))
        memset(bases[rank], 0, Self.controlBytes)
        node.barrier()  // every rank's flags are zero before anyone waits on them
    }

    /// Frees the window. Collective over the node, like creation.
    public func release() { window.release() }

    // MARK: Layout of a rank's part of the window

    private func epochFlag(_ r: Int) -> UnsafeMutablePointer<Int64> {
        bases[r].bindMemory(to: Int64.self, capacity: 1)
    }

    private func countSlot(_ r: Int, parity: Int) -> UnsafeMutablePointer<Int64> {
        (bases[r] + 64).bindMemory(to: Int64.self, capacity: 2) + parity
    }

    private func slot<T>(_ r: Int, half h: Int, _: T.Type) -> UnsafeMutablePointer<T> {
        (bases[r] + Self.controlBytes + h * pieceBytes).bindMemory(to: T.self, capacity: pieceBytes / MemoryLayout<T>.stride)
    }

    // MARK: Synchronisation

    /// Waits until every rank has arrived here. With `count`, publishes it and
    /// returns every rank's count (in a slot by epoch parity: a peer is at most one
    /// barrier ahead, so it never overwrites a count still being read).
    @discardableResult
    private func barrier(publishing count: Int? = nil) -> [Int64] {
        epoch += 1
        let parity = Int(epoch & 1)
        if let count { countSlot(rank, parity: parity).pointee = Int64(count) }
        chorus_store_release(epochFlag(rank), epoch)
        for r in 0..<ranks where r != rank {
            let flag = epochFlag(r)
            var spins = 0
            var nextProgress: UInt64 = 0
            while chorus_load_acquire(flag) < epoch {
                spins += 1
                if spins < Self.spinsBeforeYield {
                    chorus_cpu_relax()
                    continue
                }
                sched_yield()
                // Keep MPI progressing once a wait gets long: a peer may be stuck in
                // MPI_Wait on a send of an earlier collective that completes only when
                // this rank's progress engine acknowledges it.
                let now = MonotonicClock.nanoseconds()
                if nextProgress == 0 {
                    nextProgress = now + Self.progressIntervalNanoseconds
                } else if now >= nextProgress {
                    node.progress()
                    nextProgress = now + Self.progressIntervalNanoseconds
                }
            }
        }
        guard count != nil else { return [] }
        return (0..<ranks).map { countSlot($0, parity: parity).pointee }
    }

    private func checkCounts(_ counts: [Int64], _ count: Int, operation: String) {
        if let other = counts.firstIndex(where: { $0 != Int64(count) }) {
            node.abort("\(operation): ranks disagree on the element count: rank \(worldRanks[rank]) has \(count), rank \(worldRanks[other]) has \(counts[other]); every rank must pass the same length")
        }
    }

    // MARK: Collectives

    /// All-reduces `buffer` in place on every rank of the node. With `resultOnRank`,
    /// only that rank receives the result (a reduce); the others' buffers are unchanged.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    @_specialize(exported: true, where T == Float16)
    @_specialize(exported: true, where T == BFloat16)
    public func allreduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ reduction: Reduction = .sum,
                                               resultOnRank: Int? = nil) {
        guard ranks > 1 else { return }
        let n = buffer.count
        let scale: T = reduction == .average ? T.reciprocal(of: ranks) : .one
        if n * MemoryLayout<T>.stride <= min(Self.replicatedReductionBytes, pieceBytes) {
            return replicatedAllreduce(buffer, scale: scale, resultOnRank: resultOnRank)
        }
        let perPiece = pieceBytes / MemoryLayout<T>.stride
        let pieces = (n + perPiece - 1) / perPiece
        for k in 0..<max(pieces, 1) {
            let start = k * perPiece, m = min(n, start + perPiece) - start
            let chunks = Chunking(count: m, parts: ranks)
            let mine = chunks.range(rank)
            let h = half
            half ^= 1
            let own = slot(rank, half: h, T.self)
            let piece = buffer.baseAddress.map { $0 + start }

            // Copy in every chunk but my own: I read mine straight from the buffer.
            if let piece {
                own.update(from: piece, count: mine.lowerBound)
                (own + mine.upperBound).update(from: piece + mine.upperBound, count: m - mine.upperBound)
            }
            if k == 0 {
                checkCounts(barrier(publishing: n), n, operation: "shared-memory all-reduce")
                if n == 0 { return }
            } else {
                barrier()
            }

            // Reduce my chunk over all ranks, in rank order.
            if !mine.isEmpty, let piece {
                func source(_ r: Int) -> UnsafePointer<T> {
                    UnsafePointer(r == rank ? piece + mine.lowerBound : slot(r, half: h, T.self) + mine.lowerBound)
                }
                let out = UnsafeMutableBufferPointer(start: own + mine.lowerBound, count: mine.count)
                T.sum(UnsafeBufferPointer(start: source(0), count: mine.count),
                            UnsafeBufferPointer(start: source(1), count: mine.count),
                            into: out, scale: ranks == 2 ? scale : .one)
                for r in 2..<max(ranks, 2) {
                    T.add(UnsafeBufferPointer(start: source(r), count: mine.count), into: out,
                                scale: r == ranks - 1 ? scale : .one)
                }
            }
            barrier()

            // Copy every reduced chunk out of its owner's slot.
            if let piece, resultOnRank == nil || resultOnRank == rank {
                for r in 0..<ranks {
                    let range = chunks.range(r)
                    (piece + range.lowerBound).update(from: slot(r, half: h, T.self) + range.lowerBound, count: range.count)
                }
            }
        }
    }

    /// Small messages: copy in, one barrier, every rank sums all slots in rank order
    /// (the same order on every rank, so the same bits). The next call uses the other
    /// half, and the call after it cannot start writing this half again before every
    /// rank has passed the next call's barrier, so one barrier per call is enough.
    private func replicatedAllreduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, scale: T,
                                                          resultOnRank: Int?) {
        let n = buffer.count
        let h = half
        half ^= 1
        if let data = buffer.baseAddress { slot(rank, half: h, T.self).update(from: data, count: n) }
        checkCounts(barrier(publishing: n), n, operation: "shared-memory all-reduce")
        guard n > 0, resultOnRank == nil || resultOnRank == rank else { return }
        func source(_ r: Int) -> UnsafeBufferPointer<T> { UnsafeBufferPointer(start: slot(r, half: h, T.self), count: n) }
        T.sum(source(0), source(1), into: buffer, scale: ranks == 2 ? scale : .one)
        for r in 2..<max(ranks, 2) {
            T.add(source(r), into: buffer, scale: r == ranks - 1 ? scale : .one)
        }
    }

    /// Broadcasts `root`'s buffer to every rank of the node: the root copies each
    /// piece into its slot, the others copy it out after one barrier (the alternating
    /// halves make one barrier per piece enough, as in `allreduce`).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    @_specialize(exported: true, where T == Float16)
    @_specialize(exported: true, where T == BFloat16)
    public func broadcast<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) {
        guard ranks > 1 else { return }
        let n = buffer.count
        let perPiece = pieceBytes / MemoryLayout<T>.stride
        let pieces = (n + perPiece - 1) / perPiece
        for k in 0..<max(pieces, 1) {
            let start = k * perPiece, m = min(n, start + perPiece) - start
            let h = half
            half ^= 1
            let piece = buffer.baseAddress.map { $0 + start }
            if rank == root, let piece { slot(root, half: h, T.self).update(from: piece, count: m) }
            if k == 0 {
                checkCounts(barrier(publishing: n), n, operation: "shared-memory broadcast")
                if n == 0 { return }
            } else {
                barrier()
            }
            if rank != root, let piece { piece.update(from: slot(root, half: h, T.self), count: m) }
        }
    }
}
