import CMPI

/// A group of ranks that exchange messages: a thin, typed layer over `MPI_Comm`.
///
/// Every call is checked (see `check`); buffers are Swift buffer pointers and counts
/// are element counts. Blocking calls take borrowed buffers; non-blocking calls either
/// take a `MessageBuffer`, which the returned `Request` keeps alive, or are marked
/// `unsafe` and leave the buffer's lifetime to the caller.
public final class Communicator: @unchecked Sendable {
    let handle: MPI_Comm
    private let owned: Bool
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

    deinit {
        if owned && !MPIRuntime.isFinalized {
            var h: MPI_Comm? = handle
            MPI_Comm_free(&h)
        }
    }

    /// All ranks of the job. Valid after `MPIRuntime.initialize`.
    public static var world: Communicator { Communicator(handle: chorus_comm_world(), owned: false) }

    // MARK: Synchronisation

    public func barrier(file: StaticString = #fileID, line: UInt = #line) {
        check(MPI_Barrier(handle), "MPI_Barrier", file: file, line: line)
    }

    // MARK: Blocking point-to-point

    public func send<T: MPIScalar>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int = 0,
                                   file: StaticString = #fileID, line: UInt = #line) {
        check(MPI_Send(buffer.baseAddress, Int32(buffer.count), T.scalarKind.datatype,
                       Int32(destination), Int32(tag), handle), "MPI_Send", file: file, line: line)
    }

    public func receive<T: MPIScalar>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int = 0,
                                      file: StaticString = #fileID, line: UInt = #line) {
        check(MPI_Recv(buffer.baseAddress, Int32(buffer.count), T.scalarKind.datatype,
                       Int32(source), Int32(tag), handle, chorus_status_ignore()),
              "MPI_Recv", file: file, line: line)
    }

    /// Sends one buffer and receives another in a single deadlock-free call.
    public func sendReceive<T: MPIScalar>(_ sendBuffer: UnsafeBufferPointer<T>, to destination: Int,
                                          into receiveBuffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                          tag: Int = 0, file: StaticString = #fileID, line: UInt = #line) {
        check(MPI_Sendrecv(sendBuffer.baseAddress, Int32(sendBuffer.count), T.scalarKind.datatype,
                           Int32(destination), Int32(tag),
                           receiveBuffer.baseAddress, Int32(receiveBuffer.count), T.scalarKind.datatype,
                           Int32(source), Int32(tag), handle, chorus_status_ignore()),
              "MPI_Sendrecv", file: file, line: line)
    }

    // MARK: Non-blocking point-to-point

    /// Starts sending `buffer[range]`; the request keeps `buffer` alive.
    public func isend<T>(_ buffer: MessageBuffer<T>, range: Range<Int>? = nil, to destination: Int, tag: Int = 0,
                         file: StaticString = #fileID, line: UInt = #line) -> Request {
        let r = range ?? 0..<buffer.count
        let slice = UnsafeBufferPointer(rebasing: buffer.pointer[r])
        return unsafeIsend(slice, to: destination, tag: tag, keepAlive: buffer, file: file, line: line)
    }

    /// Starts receiving into `buffer[range]`; the request keeps `buffer` alive.
    public func ireceive<T>(into buffer: MessageBuffer<T>, range: Range<Int>? = nil, from source: Int,
                            tag: Int = 0, file: StaticString = #fileID, line: UInt = #line) -> Request {
        let r = range ?? 0..<buffer.count
        let slice = UnsafeMutableBufferPointer(rebasing: buffer.pointer[r])
        return unsafeIreceive(into: slice, from: source, tag: tag, keepAlive: buffer, file: file, line: line)
    }

    /// Starts sending from memory whose lifetime the caller guarantees until the
    /// request completes (or that `keepAlive` owns).
    public func unsafeIsend<T: MPIScalar>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int = 0,
                                          keepAlive: AnyObject? = nil,
                                          file: StaticString = #fileID, line: UInt = #line) -> Request {
        var request: MPI_Request? = chorus_request_null()
        check(MPI_Isend(buffer.baseAddress, Int32(buffer.count), T.scalarKind.datatype,
                        Int32(destination), Int32(tag), handle, &request), "MPI_Isend", file: file, line: line)
        return Request(handle: request, keepAlive: keepAlive, call: "MPI_Isend")
    }

    /// Starts receiving into memory whose lifetime the caller guarantees until the
    /// request completes (or that `keepAlive` owns).
    public func unsafeIreceive<T: MPIScalar>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                             tag: Int = 0, keepAlive: AnyObject? = nil,
                                             file: StaticString = #fileID, line: UInt = #line) -> Request {
        var request: MPI_Request? = chorus_request_null()
        check(MPI_Irecv(buffer.baseAddress, Int32(buffer.count), T.scalarKind.datatype,
                        Int32(source), Int32(tag), handle, &request), "MPI_Irecv", file: file, line: line)
        return Request(handle: request, keepAlive: keepAlive, call: "MPI_Irecv")
    }

    // MARK: The library's own collectives (baselines and small control messages)

    /// `MPI_Allreduce` in place: the baseline every Chorus collective is measured against.
    public func mpiAllreduce<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp = .sum,
                                           file: StaticString = #fileID, line: UInt = #line) {
        check(MPI_Allreduce(chorus_in_place(), buffer.baseAddress, Int32(buffer.count),
                            T.scalarKind.datatype, op.op, handle), "MPI_Allreduce", file: file, line: line)
    }

    /// `MPI_Allreduce` of one value.
    public func mpiAllreduce<T: MPIScalar>(_ value: T, op: ReduceOp, file: StaticString = #fileID,
                                           line: UInt = #line) -> T {
        var v = value
        withUnsafeMutablePointer(to: &v) { p in
            mpiAllreduce(UnsafeMutableBufferPointer(start: p, count: 1), op: op, file: file, line: line)
        }
        return v
    }

    /// `MPI_Bcast` from `root`.
    public func mpiBroadcast<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int = 0,
                                           file: StaticString = #fileID, line: UInt = #line) {
        check(MPI_Bcast(buffer.baseAddress, Int32(buffer.count), T.scalarKind.datatype, Int32(root), handle),
              "MPI_Bcast", file: file, line: line)
    }

    /// `MPI_Allgather` of one value per rank, in rank order.
    public func allgather<T: MPIScalar>(_ value: T, file: StaticString = #fileID, line: UInt = #line) -> [T] {
        let mine = [value]
        return [T](unsafeUninitializedCapacity: size) { out, count in
            mine.withUnsafeBufferPointer { p in
                check(MPI_Allgather(p.baseAddress, 1, T.scalarKind.datatype, out.baseAddress, 1,
                                    T.scalarKind.datatype, handle), "MPI_Allgather", file: file, line: line)
            }
            count = size
        }
    }

    /// Gathers every rank's bytes (any length) on every rank, in rank order.
    public func allgatherBytes(_ bytes: [UInt8], file: StaticString = #fileID, line: UInt = #line) -> [[UInt8]] {
        let lengths = allgather(Int32(bytes.count), file: file, line: line)
        var displacements = [Int32](repeating: 0, count: size)
        for i in 1..<max(size, 1) { displacements[i] = displacements[i - 1] + lengths[i - 1] }
        let total = Int(lengths.reduce(0, +))
        var all = [UInt8](repeating: 0, count: total)
        bytes.withUnsafeBufferPointer { mine in
            all.withUnsafeMutableBufferPointer { out in
                check(MPI_Allgatherv(mine.baseAddress, Int32(bytes.count), chorus_uint8(),
                                     out.baseAddress, lengths, displacements, chorus_uint8(), handle),
                      "MPI_Allgatherv", file: file, line: line)
            }
        }
        return (0..<size).map { i in
            Array(all[Int(displacements[i])..<Int(displacements[i] + lengths[i])])
        }
    }

    /// A new communicator over the same ranks (`MPI_Comm_dup`), whose messages never
    /// match this one's: for traffic running in the background, like gradient buckets
    /// on a communication thread. Collective.
    public func duplicate(file: StaticString = #fileID, line: UInt = #line) -> Communicator {
        var newHandle = chorus_comm_null()
        check(MPI_Comm_dup(handle, &newHandle), "MPI_Comm_dup", file: file, line: line)
        return Communicator(handle: newHandle!, owned: true)
    }

    /// Lets the MPI library advance transfers in flight (one `MPI_Iprobe`). Code that
    /// waits outside MPI (a spin on shared memory) must call it: a peer's large send
    /// completes only when this rank's progress engine acknowledges it, and a rank
    /// spinning elsewhere would leave that peer waiting forever.
    public func progress(file: StaticString = #fileID, line: UInt = #line) {
        var flag: Int32 = 0
        check(MPI_Iprobe(chorus_any_source(), chorus_any_tag(), handle, &flag, chorus_status_ignore()), "MPI_Iprobe",
              file: file, line: line)
    }

    /// True on every rank when `ok` is true on every rank: how ranks that each
    /// validated something locally (a file, a flag) decide together to stop, so no
    /// rank is left waiting in a collective the others never reach.
    public func allAgree(_ ok: Bool, file: StaticString = #fileID, line: UInt = #line) -> Bool {
        mpiAllreduce(Int32(ok ? 1 : 0), op: .min, file: file, line: line) == 1
    }

    // MARK: Sub-communicators

    /// Splits into sub-communicators of the ranks passing the same `color`, ordered by `key`.
    public func split(color: Int, key: Int, file: StaticString = #fileID, line: UInt = #line) -> Communicator {
        var newHandle = chorus_comm_null()
        check(MPI_Comm_split(handle, Int32(color), Int32(key), &newHandle), "MPI_Comm_split", file: file, line: line)
        return Communicator(handle: newHandle!, owned: true)
    }

    /// The ranks that share memory with this one (one node), ordered by rank.
    public func splitByNode(file: StaticString = #fileID, line: UInt = #line) -> Communicator {
        var newHandle = chorus_comm_null()
        check(MPI_Comm_split_type(handle, chorus_comm_type_shared(), Int32(rank), chorus_info_null(), &newHandle),
              "MPI_Comm_split_type", file: file, line: line)
        return Communicator(handle: newHandle!, owned: true)
    }
}
