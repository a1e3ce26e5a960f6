import Communication
#if canImport(Glibc)
import Glibc
#endif

/// Rank-aware console output (llm.c's `printf0`): progress comes from rank 0 only;
/// errors name the rank when there is more than one.
///
/// On a terminal, progress lines overwrite each other in place; anywhere else (a
/// SLURM log, a pipe) every update is a plain line of its own, so logs stay readable.
/// Under a launcher (mpirun, srun) a rank's stdout is a pipe or pseudo-terminal owned
/// by the launcher, whose own output may well be a log file, so plain lines it is.
public enum ConsoleLog {
    public static let isTerminal: Bool = {
        let launchers: [String] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_PROCID"]
        let launched = launchers.contains { getenv($0) != nil }
        return isatty(STDOUT_FILENO) != 0 && !launched
    }()
    // nonisolated(unsafe): only the training thread of rank 0 prints progress; the
    // other threads (communication, watchdog) write to standard error, not here.
    nonisolated(unsafe) private static var lineOpen = false

    /// A line from rank 0.
    public static func info(_ message: String, rank: Int) {
        guard rank == 0 else { return }
        closeLine()
        print(message)
        flushStandardOutput()
    }

    /// A progress update from rank 0: rewritten in place on a terminal.
    public static func progress(_ message: String, rank: Int) {
        guard rank == 0 else { return }
        if isTerminal {
            print("\r\u{1B}[2K" + message, terminator: "")
            lineOpen = true
        } else {
            print(message)
        }
        flushStandardOutput()
    }

    /// Ends an in-place progress line so the next output starts on a fresh line.
    public static func closeLine() {
        if lineOpen {
            print("")
            lineOpen = false
        }
    }
}
