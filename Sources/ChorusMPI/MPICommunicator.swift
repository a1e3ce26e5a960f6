import CMPI
import Communication

/// A group of MPI ranks: `Communicator` over an `MPI_Comm`.
///
/// Every call is checked (see `check`) and reports the Chorus source line that made
/// it; buffers are Swift buffer pointers and counts are element counts. Groups made
/// by `split`, `splitByNode` and `duplicate` are freed by `release()`, collectively;
/// `deinit` never calls MPI (`MPI_Comm_free` is collective, and a communicator
/// dropped on one rank only must not hang the others): one that is never released
/// is freed by `MPI_Finalize`.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    // @unchecked Sendable: `rank` and `size` are immutable, and the handle may be
    // used from several threads because MPI is initialised with
    // MPI_THREAD_MULTIPLE wherever more than one thread calls it (MPIRuntime).
    // `released` is only written by `release()`, which the owner calls once, on one
    // thread, when no other thread uses the group any more.
    let handle: MPI_Comm
    private let owned: Bool
    private var released = false
    public let rank: Int
    public let size: Int

    init(handle: MPI_Comm, owned: Bool) {
        self.handle = handle
        self.owned = owned
        var rank: Int32 = 0
        var size: Int32 = 0
        check(MPI_Comm_rank(handle, &rank), "MPI_Comm_rank")
        check(MPI_Comm_size(handle, &size), "MPI_Comm_size")
        self.rank = Int(rank)
        self.size = Int(size)
    }

    /// All ranks of the job. Valid after `MPIRuntime.initialize`.
    public static var world: MPICommunicator { MPICommunicator(handle: chorus_comm_world(), owned: false) }

    /// A released group's handle is freed: using it would be a use-after-free in MPI.
    @inline(__always)
    private func checkUsable(_ location: SourceLocation) {
        if released { MPIRuntime.abort("a communicator was used after release() at \(location)") }
    }

    // MARK: Blocking point-to-point (MPI's own, for measurements of MPI itself)

    public func send<T: MessageScalar>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int = 0,
                                       file: StaticString = #fileID, line: UInt = #line) {
        check(MPI_Send(buffer.baseAddress, Int32(buffer.count), T.scalarKind.datatype,
                       Int32(destination), Int32(tag), handle), "MPI_Send", file: file, line: line)
    }

    public func receive<T: MessageScalar>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int = 0,
                                          file: StaticString = #fileID, line: UInt = #line) {
        check(MPI_Recv(buffer.baseAddress, Int32(buffer.count), T.scalarKind.datatype,
                       Int32(source), Int32(tag), handle, chorus_status_ignore()), "MPI_Recv", file: file, line: line)
    }

    // MARK: Point-to-point

    public func startSend<T: MessageScalar>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int,
                                            keepAlive: AnyObject?, at location: SourceLocation) -> any Transfer {
        checkUsable(location)
        var request: MPI_Request? = chorus_request_null()
        check(MPI_Isend(buffer.baseAddress, Int32(buffer.count), T.scalarKind.datatype,
                        Int32(destination), Int32(tag), handle, &request), "MPI_Isend", at: location)
        return Request(handle: request, keepAlive: keepAlive, isReceive: false, location: location)
    }

    public func startReceive<T: MessageScalar>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int,
                                               keepAlive: AnyObject?, at location: SourceLocation) -> any Transfer {
        checkUsable(location)
        var request: MPI_Request? = chorus_request_null()
        check(MPI_Irecv(buffer.baseAddress, Int32(buffer.count), T.scalarKind.datatype,
                        mpiSource(source), mpiTag(tag), handle, &request), "MPI_Irecv", at: location)
        return Request(handle: request, keepAlive: keepAlive, isReceive: true, location: location)
    }

    public func exchange<T: MessageScalar>(send sendBuffer: UnsafeBufferPointer<T>, to destination: Int,
                                           receive receiveBuffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                           tag: Int, at location: SourceLocation) {
        checkUsable(location)
        check(MPI_Sendrecv(sendBuffer.baseAddress, Int32(sendBuffer.count), T.scalarKind.datatype,
                           Int32(destination), Int32(tag),
                           receiveBuffer.baseAddress, Int32(receiveBuffer.count), T.scalarKind.datatype,
                           Int32(source), Int32(tag), handle, chorus_status_ignore()),
              "MPI_Sendrecv", at: location)
    }

    public func probe(from source: Int, tag: Int, at location: SourceLocation) -> MessageStatus {
        checkUsable(location)
        var status = MPI_Status()
        check(MPI_Probe(mpiSource(source), mpiTag(tag), handle, &status), "MPI_Probe", at: location)
        return MessageStatus(status)
    }

    public func poll(from source: Int, tag: Int, at location: SourceLocation) -> MessageStatus? {
        checkUsable(location)
        var status = MPI_Status()
        var flag: Int32 = 0
        check(MPI_Iprobe(mpiSource(source), mpiTag(tag), handle, &flag, &status), "MPI_Iprobe", at: location)
        return flag != 0 ? MessageStatus(status) : nil
    }

    public func waitAny(_ transfers: [any Transfer], at location: SourceLocation) -> Int {
        checkUsable(location)
        precondition(!transfers.isEmpty, "waitAny of no transfers (at \(location))")
        let requests = Request.cast(transfers, at: location)
        if let done = requests.firstIndex(where: \.isComplete) { return done }
        var handles = requests.map(\.handle)
        var index: Int32 = 0
        var status = MPI_Status()
        check(MPI_Waitany(Int32(handles.count), &handles, &index, &status), "MPI_Waitany", at: location)
        requests[Int(index)].completed(with: status, handle: handles[Int(index)])
        return Int(index)
    }

    public func testAny(_ transfers: [any Transfer], at location: SourceLocation) -> Int? {
        checkUsable(location)
        let requests = Request.cast(transfers, at: location)
        if let done = requests.firstIndex(where: \.isComplete) { return done }
        guard !requests.isEmpty else { return nil }
        var handles = requests.map(\.handle)
        var index: Int32 = 0
        var flag: Int32 = 0
        var status = MPI_Status()
        check(MPI_Testany(Int32(handles.count), &handles, &index, &flag, &status), "MPI_Testany", at: location)
        guard flag != 0, index != chorus_undefined() else { return nil }
        requests[Int(index)].completed(with: status, handle: handles[Int(index)])
        return Int(index)
    }

    // MARK: The library's own collectives (control values and baselines)

    public func barrier(at location: SourceLocation) {
        checkUsable(location)
        check(MPI_Barrier(handle), "MPI_Barrier", at: location)
    }

    /// `MPI_Allreduce` in place: the baseline every Chorus collective is measured against.
    public func allreduce<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp,
                                            at location: SourceLocation) {
        checkUsable(location)
        if !T.scalarKind.transportReduces {
            abort("\(location): MPI_Allreduce cannot reduce \(T.scalarKind) (MPI has no half-precision sum); use one of Chorus's all-reduce algorithms")
        }
        check(MPI_Allreduce(chorus_in_place(), buffer.baseAddress, Int32(buffer.count),
                            T.scalarKind.datatype, op.mpiOp, handle), "MPI_Allreduce", at: location)
    }

    public func broadcast<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int, at location: SourceLocation) {
        checkUsable(location)
        check(MPI_Bcast(buffer.baseAddress, Int32(buffer.count), T.scalarKind.datatype, Int32(root), handle),
              "MPI_Bcast", at: location)
    }

    public func allgather<T: MessageScalar>(_ value: T, at location: SourceLocation) -> [T] {
        checkUsable(location)
        let mine = [value]
        return [T](unsafeUninitializedCapacity: size) { out, count in
            mine.withUnsafeBufferPointer { p in
                check(MPI_Allgather(p.baseAddress, 1, T.scalarKind.datatype, out.baseAddress, 1,
                                    T.scalarKind.datatype, handle), "MPI_Allgather", at: location)
            }
            count = size
        }
    }

    public func allgatherBytes(_ bytes: [UInt8], at location: SourceLocation) -> [[UInt8]] {
        checkUsable(location)
        let lengths = allgather(Int32(bytes.count), at: location)
        var displacements = [Int32](repeating: 0, count: size)
        for i in 1..<max(size, 1) { displacements[i] = displacements[i - 1] + lengths[i - 1] }
        let total = Int(lengths.reduce(0, +))
        var all = [UInt8](repeating: 0, count: total)
        bytes.withUnsafeBufferPointer { mine in
            all.withUnsafeMutableBufferPointer { out in
                check(MPI_Allgatherv(mine.baseAddress, Int32(bytes.count), chorus_uint8(),
                                     out.baseAddress, lengths, displacements, chorus_uint8(), handle),
                      "MPI_Allgatherv", at: location)
            }
        }
        return (0..<size).map { i in
            Array(all[Int(displacements[i])..<Int(displacements[i] + lengths[i])])
        }
    }

    // MARK: Groups

    public func split(color: Int?, key: Int, at location: SourceLocation) -> (any Communicator)? {
        checkUsable(location)
        precondition(color.map { $0 >= 0 } ?? true, "split colors must be non-negative (at \(location))")
        var newHandle = chorus_comm_null()
        check(MPI_Comm_split(handle, color.map { Int32($0) } ?? chorus_undefined(), Int32(key), &newHandle),
              "MPI_Comm_split", at: location)
        guard color != nil else { return nil }
        return MPICommunicator(handle: newHandle!, owned: true)
    }

    public func splitByNode(at location: SourceLocation) -> any Communicator {
        checkUsable(location)
        var newHandle = chorus_comm_null()
        check(MPI_Comm_split_type(handle, chorus_comm_type_shared(), Int32(rank), chorus_info_null(), &newHandle),
              "MPI_Comm_split_type", at: location)
        return MPICommunicator(handle: newHandle!, owned: true)
    }

    public func duplicate(at location: SourceLocation) -> any Communicator {
        checkUsable(location)
        var newHandle = chorus_comm_null()
        check(MPI_Comm_dup(handle, &newHandle), "MPI_Comm_dup", at: location)
        return MPICommunicator(handle: newHandle!, owned: true)
    }

    public func allocateSharedMemory(bytesPerRank: Int, at location: SourceLocation) -> any SharedMemory {
        checkUsable(location)
        return SharedWindow(communicator: self, bytesPerRank: bytesPerRank, at: location)
    }

    public func release(at location: SourceLocation) {
        guard owned, !released, !MPIRuntime.isFinalized else { return }
        released = true
        var h: MPI_Comm? = handle
        check(MPI_Comm_free(&h), "MPI_Comm_free", at: location)
    }

    // MARK: Progress and failure

    public func progress(at location: SourceLocation) {
        checkUsable(location)
        var flag: Int32 = 0
        check(MPI_Iprobe(chorus_any_source(), chorus_any_tag(), handle, &flag, chorus_status_ignore()), "MPI_Iprobe",
              at: location)
    }

    public func abort(_ message: String) -> Never { MPIRuntime.abort(message) }
}
