import CMPI
import Communication

/// An outstanding non-blocking MPI operation: `Transfer` over an `MPI_Request`.
///
/// The request owns a reference to whatever memory the operation reads or writes
/// (`keepAlive`), so that memory outlives the transfer. A request dropped before it
/// completed waits in `deinit`: freeing a buffer under an active transfer would be
/// silent memory corruption, and a wait is the only safe answer (it is not a
/// collective call: it involves only this transfer's peer).
public final class Request: Transfer {
    var handle: MPI_Request?
    private var keepAlive: AnyObject?
    public private(set) var isComplete = false
    public private(set) var status: MessageStatus?
    let isReceive: Bool
    /// Where the transfer was started: the location reported if completing it fails.
    let location: SourceLocation

    init(handle: MPI_Request?, keepAlive: AnyObject?, isReceive: Bool, location: SourceLocation) {
        self.handle = handle
        self.keepAlive = keepAlive
        self.isReceive = isReceive
        self.location = location
    }

    /// Blocks until the operation has completed.
    public func wait() {
        guard !isComplete else { return }
        var mpiStatus = MPI_Status()
        check(MPI_Wait(&handle, &mpiStatus), "MPI_Wait", at: location)
        finish(mpiStatus)
    }

    /// Whether the operation has completed, driving MPI's progress engine.
    public func test() -> Bool {
        guard !isComplete else { return true }
        var flag: Int32 = 0
        var mpiStatus = MPI_Status()
        check(MPI_Test(&handle, &flag, &mpiStatus), "MPI_Test", at: location)
        if flag != 0 { finish(mpiStatus) }
        return isComplete
    }

    /// Completion reported by `MPI_Waitany`/`MPI_Testany`, which also reset the handle.
    func completed(with mpiStatus: MPI_Status, handle: MPI_Request?) {
        self.handle = handle
        finish(mpiStatus)
    }

    private func finish(_ mpiStatus: MPI_Status) {
        isComplete = true
        keepAlive = nil
        if isReceive { status = MessageStatus(mpiStatus) }
    }

    /// The MPI requests behind transfers started on an `MPICommunicator`.
    static func cast(_ transfers: [any Transfer], at location: SourceLocation) -> [Request] {
        transfers.map { transfer in
            guard let request = transfer as? Request else {
                MPIRuntime.abort("waitAny/testAny at \(location) was given a transfer that is not an MPI request")
            }
            return request
        }
    }

    deinit { wait() }
}
