import CMPI
import Communication

/// Memory that every rank of a communicator maps: an MPI-3 shared-memory window
/// (`MPI_Win_allocate_shared`). Each rank owns `bytesPerRank` bytes and can read and
/// write every other rank's part directly, with no messages.
///
/// All ranks of the communicator must share memory (one node). Creating and freeing
/// the window are collective: every rank creates it at the same point, and frees it
/// with `release()` at the same point. `deinit` does not free it (`MPI_Win_free` is
/// collective); a window never released is freed by `MPI_Finalize`.
final class SharedWindow: SharedMemory, @unchecked Sendable {
    // @unchecked Sendable: `bases` is filled in `init` and only read afterwards;
    // `handle` and `released` change only in `release()`, which the owner calls once,
    // after the last use. What the ranks write into the memory is synchronised by its
    // users (acquire/release flags).
    private var handle: MPI_Win?
    private var released = false
    let bytesPerRank: Int
    private var bases: [UnsafeMutableRawPointer] = []

    init(communicator: MPICommunicator, bytesPerRank: Int, at location: SourceLocation) {
        self.bytesPerRank = bytesPerRank
        var mine: UnsafeMutableRawPointer?
        withUnsafeMutablePointer(to: &mine) { pointer in
            check(MPI_Win_allocate_shared(MPI_Aint(bytesPerRank), 1, chorus_info_null(), communicator.handle, pointer, &handle),
                  "MPI_Win_allocate_shared", at: location)
        }
        for rank in 0..<communicator.size {
            var size: MPI_Aint = 0
            var unit: Int32 = 0
            var base: UnsafeMutableRawPointer?
            withUnsafeMutablePointer(to: &base) { pointer in
                check(MPI_Win_shared_query(handle, Int32(rank), &size, &unit, pointer), "MPI_Win_shared_query", at: location)
            }
            bases.append(base!)
        }
    }

    func base(of rank: Int) -> UnsafeMutableRawPointer { bases[rank] }

    func release() {
        guard !released, !MPIRuntime.isFinalized else { return }
        released = true
        check(MPI_Win_free(&handle), "MPI_Win_free")
    }
}
