import CMPI
import Communication

#if canImport(Glibc)
import Glibc
#endif

/// How much threading the program needs from MPI, in the standard's order.
public enum ThreadLevel: Int, Comparable, Sendable, CustomStringConvertible {
    case single, funneled, serialized, multiple

    var mpiValue: Int32 {
        switch self {
        case .single: chorus_thread_single()
        case .funneled: chorus_thread_funneled()
        case .serialized: chorus_thread_serialized()
        case .multiple: chorus_thread_multiple()
        }
    }

    init(mpiValue: Int32) {
        switch mpiValue {
        case chorus_thread_multiple(): self = .multiple
        case chorus_thread_serialized(): self = .serialized
        case chorus_thread_funneled(): self = .funneled
        default: self = .single
        }
    }

    public static func < (a: ThreadLevel, b: ThreadLevel) -> Bool { a.rawValue < b.rawValue }

    /// What to tell the user when MPI grants less than the program needs, or nil.
    public static func shortfall(granted: ThreadLevel, required: ThreadLevel, because why: String) -> String? {
        guard granted < required else { return nil }
        return "the MPI library granted \(granted) but Chorus needs \(required) (\(why)); " +
            "use an MPI built with thread support (Open MPI and MPICH provide it by default)"
    }

    public var description: String {
        switch self {
        case .single: "MPI_THREAD_SINGLE"
        case .funneled: "MPI_THREAD_FUNNELED"
        case .serialized: "MPI_THREAD_SERIALIZED"
        case .multiple: "MPI_THREAD_MULTIPLE"
        }
    }
}

/// Process-wide MPI state: start-up, shut-down and the job-ending abort.
public enum MPIRuntime {
    /// Starts MPI with the thread level the program uses, and ends the job on every
    /// rank with a clear message if the library grants less (`why` says what needs
    /// it). Returns the world communicator.
    ///
    /// A single process started without `mpirun` is a world of size 1 (MPI singleton
    /// start-up), so every tool runs the same code path at 1..N ranks.
    @discardableResult
    public static func initialize(requiring required: ThreadLevel = .multiple,
                                  because why: String = "a communication thread and the watchdog call MPI from their own threads")
        -> MPICommunicator {
        var provided: Int32 = 0
        let code = MPI_Init_thread(nil, nil, required.mpiValue, &provided)
        if code != MPI_SUCCESS {
            writeToStandardError("chorus: MPI_Init_thread failed with error code \(code)\n")
            exit(1)
        }
        check(MPI_Comm_set_errhandler(chorus_comm_world(), chorus_errors_return()), "MPI_Comm_set_errhandler")
        let granted = ThreadLevel(mpiValue: provided)
        grantedThreadLevel = granted
        if let problem = ThreadLevel.shortfall(granted: granted, required: required, because: why) {
            abort(problem)
        }
        return MPICommunicator.world
    }

    /// The thread level MPI granted at `initialize`.
    // nonisolated(unsafe): written once by `initialize`, before the program starts
    // any thread that could read it.
    nonisolated(unsafe) public private(set) static var grantedThreadLevel: ThreadLevel = .single

    public static var isInitialized: Bool {
        var flag: Int32 = 0
        MPI_Initialized(&flag)
        return flag != 0
    }

    public static var isFinalized: Bool {
        var flag: Int32 = 0
        MPI_Finalized(&flag)
        return flag != 0
    }

    /// Ends MPI cleanly. Safe to call more than once.
    public static func finalize() {
        if isInitialized && !isFinalized {
            check(MPI_Finalize(), "MPI_Finalize")
        }
    }

    /// Reports `message` from this rank and ends the whole job: the last resort when
    /// the ranks cannot agree to stop together (a failed MPI call, a timeout).
    public static func abort(_ message: String, code: Int32 = 1) -> Never {
        var rank: Int32 = -1
        if isInitialized && !isFinalized { MPI_Comm_rank(chorus_comm_world(), &rank) }
        writeToStandardError("chorus [rank \(rank)]: \(message)\n")
        if isInitialized && !isFinalized {
            MPI_Abort(chorus_comm_world(), code == 0 ? 1 : code)
        }
        exit(code == 0 ? 1 : code)
    }


    /// The name of the host this rank runs on.
    public static var processorName: String {
        var length: Int32 = 0
        var name = [CChar](repeating: 0, count: Int(chorus_max_processor_name()) + 1)
        check(MPI_Get_processor_name(&name, &length), "MPI_Get_processor_name")
        return String(decoding: name.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
