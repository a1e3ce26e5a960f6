import CMPI

/// An outstanding non-blocking operation.
///
/// The request owns a reference to whatever memory the operation reads or writes
/// (`keepAlive`), so that memory outlives the transfer. A request dropped before it
/// completed waits in `deinit`: freeing a buffer under an active transfer would be
/// silent memory corruption, and a wait is the only safe answer.
public final class Request: @unchecked Sendable {
    var handle: MPI_Request?
    private var keepAlive: AnyObject?
    public private(set) var isComplete = false
    let call: StaticString

    init(handle: MPI_Request?, keepAlive: AnyObject?, call: StaticString) {
        self.handle = handle
        self.keepAlive = keepAlive
        self.call = call
    }

    /// Blocks until the operation has completed.
    public func wait(file: StaticString = #fileID, line: UInt = #line) {
        guard !isComplete else { return }
        check(MPI_Wait(&handle, chorus_status_ignore()), "MPI_Wait", file: file, line: line)
        finish()
    }

    /// Returns whether the operation has completed, driving MPI's progress engine.
    public func test(file: StaticString = #fileID, line: UInt = #line) -> Bool {
        guard !isComplete else { return true }
        var flag: Int32 = 0
        check(MPI_Test(&handle, &flag, chorus_status_ignore()), "MPI_Test", file: file, line: line)
        if flag != 0 { finish() }
        return isComplete
    }

    /// Blocks until every request has completed.
    public static func waitAll(_ requests: [Request], file: StaticString = #fileID, line: UInt = #line) {
        for request in requests { request.wait(file: file, line: line) }
    }

    private func finish() {
        isComplete = true
        keepAlive = nil
    }

    deinit { wait() }
}
