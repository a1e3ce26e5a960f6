/// Memory that every rank of a node maps: each rank owns `bytesPerRank` bytes and can
/// read and write every other rank's part directly, with no messages (an MPI-3
/// shared-memory window for real ranks).
///
/// Synchronisation is the user's: the shared-memory all-reduce publishes flags with
/// acquire/release atomics. Freed by `release()`, collectively.
public protocol SharedMemory: AnyObject, Sendable {
    var bytesPerRank: Int { get }

    /// The start of `rank`'s part, mapped into this process.
    func base(of rank: Int) -> UnsafeMutableRawPointer

    /// Frees the memory. Collective: every rank of the group calls it at the same point.
    func release()
}
