import Communication
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Rank-aware console output (llm.c's `printf0`): progress comes from rank 0 only.
///
/// On a terminal, progress lines overwrite each other in place; anywhere else (a
/// SLURM log, a pipe) every update is a plain line of its own, so logs stay readable.
/// Under a launcher (mpirun, srun) a rank's stdout is a pipe or pseudo-terminal owned
/// by the launcher, whose own output may well be a log file, so plain lines it is.
/// Errors are the command layer's to print (it knows the flags they name).
public enum ConsoleLog {
    public static let isTerminal: Bool = {
        let launchers: [String] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_PROCID"]
        let launched = launchers.contains { getenv($0) != nil }
        return isatty(STDOUT_FILENO) != 0 && !launched
    }()
    private static let lock = NSLock()
    // nonisolated(unsafe): every access takes `lock` (fake ranks of several groups in
    // one process can all be a rank 0).
    nonisolated(unsafe) private static var lineOpen = false

    /// Runs `body` with this thread's lines silenced: a search's trials run whole
    /// training loops, each of whose rank 0 would otherwise print its progress.
    public static func muted<T>(_ body: () throws -> T) rethrows -> T {
        let dictionary = Thread.current.threadDictionary
        let before = dictionary[mutedKey]
        dictionary[mutedKey] = true
        defer { dictionary[mutedKey] = before }
        return try body()
    }

    private static let mutedKey = "chorus.console.muted"
    private static var isMuted: Bool { Thread.current.threadDictionary[mutedKey] as? Bool ?? false }

    /// A line from rank 0.
    public static func info(_ message: String, rank: Int) {
        guard rank == 0, !isMuted else { return }
        lock.lock()
        defer { lock.unlock() }
        endOpenLine()
        print(message)
        flushStandardOutput()
    }

    /// A progress update from rank 0: rewritten in place on a terminal.
    public static func progress(_ message: String, rank: Int) {
        guard rank == 0, !isMuted else { return }
        lock.lock()
        defer { lock.unlock() }
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
        lock.lock()
        defer { lock.unlock() }
        endOpenLine()
    }

    private static func endOpenLine() {
        if lineOpen {
            print("")
            lineOpen = false
        }
    }
}
