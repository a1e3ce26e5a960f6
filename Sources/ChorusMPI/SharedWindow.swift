import CMPI

/// Memory that every rank of a communicator maps: an MPI-3 shared-memory window
/// (`MPI_Win_allocate_shared`). Each rank owns `bytesPerRank` bytes and can read and
/// write every other rank's part directly, with no messages.
///
/// All ranks of the communicator must share memory (one node). Creating and freeing
/// the window are collective: every rank creates it at the same point, and frees it
/// when the last reference goes away, which must also happen at the same point on
/// every rank (owners such as `Allreducer` live as long as the training run).
public final class SharedWindow {
    private var handle: MPI_Win?
    public let communicator: Communicator
    public let bytesPerRank: Int
    private var bases: [UnsafeMutableRawPointer] = []

    public init(communicator: Communicator, bytesPerRank: Int, file: StaticString = #fileID, line: UInt = #line) {
        self.communicator = communicator
        self.bytesPerRank = bytesPerRank
        var mine: UnsafeMutableRawPointer?
        withUnsafeMutablePointer(to: &mine) { pointer in
            check(MPI_Win_allocate_shared(MPI_Aint(bytesPerRank), 1, chorus_info_null(), communicator.handle, pointer, &handle),
                  "MPI_Win_allocate_shared", file: file, line: line)
        }
        for rank in 0..<communicator.size {
            var size: MPI_Aint = 0
            var unit: Int32 = 0
            var base: UnsafeMutableRawPointer?
            withUnsafeMutablePointer(to: &base) { pointer in
                check(MPI_Win_shared_query(handle, Int32(rank), &size, &unit, pointer), "MPI_Win_shared_query",
                      file: file, line: line)
            }
            bases.append(base!)
        }
    }

    /// The start of `rank`'s part, mapped into this process.
    public func base(of rank: Int) -> UnsafeMutableRawPointer { bases[rank] }

    deinit {
        if handle != nil { check(MPI_Win_free(&handle), "MPI_Win_free") }
    }
}
