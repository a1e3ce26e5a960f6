import ArgumentParser
import ChorusMPI
import Communication
import Coordination

#if canImport(Glibc)
import Glibc
#endif

/// A command-line tool that runs on every rank of a job.
public protocol MPICommand: ParsableCommand {
    /// The MPI thread level the tool uses, and what uses it (for the message when an
    /// MPI library grants less).
    static var threadLevel: (level: ThreadLevel, reason: String) { get }

    func run(world: any Communicator) throws
}

extension MPICommand {
    public static var threadLevel: (level: ThreadLevel, reason: String) {
        (.multiple, "the gradient communication thread and the watchdog call MPI from their own threads")
    }

    /// The entry point of every Chorus tool: start MPI, run the command line, print
    /// what it says, and always finalize MPI before exiting, with a non-zero code on
    /// failure.
    public static func main() {
        let world = MPIRuntime.initialize(requiring: threadLevel.level, because: threadLevel.reason)
        let outcome = execute(Array(CommandLine.arguments.dropFirst()), world: world)
        outcome.print()
        MPIRuntime.finalize()
        #if canImport(Glibc)
        Glibc.exit(outcome.exitCode)
        #else
        Darwin.exit(outcome.exitCode)
        #endif
    }

    /// Parses `arguments` (the same on every rank, so a bad flag fails on all of them
    /// and rank 0 alone reports it) and runs the command on `world`. Nothing here
    /// needs MPI: tests run whole command lines on in-process ranks.
    public static func execute(_ arguments: [String], world: any Communicator) -> CommandOutcome {
        let command: Self
        do {
            let parsed = try parseAsRoot(arguments)
            guard let ours = parsed as? Self else {
                // `--help` parses to the library's built-in help command: the help
                // once (rank 0), and a clean end on every rank.
                return CommandOutcome(exitCode: 0, output: world.rank == 0 ? helpMessage() : nil)
            }
            command = ours
        } catch {
            let code = exitCode(for: error)
            guard world.rank == 0 else { return CommandOutcome(exitCode: code.rawValue) }
            let message = fullMessage(for: error)
            return code == .success ? CommandOutcome(exitCode: 0, output: message)
                : CommandOutcome(exitCode: code.rawValue, error: message)
        }
        do {
            try command.run(world: world)
            return CommandOutcome(exitCode: 0)
        } catch let failure as GroupFailure {
            // The rank that failed first knows why; the others only that it did.
            guard let error = failure.error else { return CommandOutcome(exitCode: 1) }
            let activity = failure.activity.isEmpty ? "" : "\(failure.activity): "
            return CommandOutcome(exitCode: 1, error: errorLine(activity + CommandLineMessages.describe(error), world: world))
        } catch {
            // Other errors are the same on every rank (they follow from the flags and
            // agreed data), so rank 0 speaks for all.
            return CommandOutcome(exitCode: 1, error: world.rank == 0 ? "error: \(CommandLineMessages.describe(error))" : nil)
        }
    }

    private static func errorLine(_ message: String, world: any Communicator) -> String {
        "error\(world.size > 1 ? " [rank \(world.rank)]" : ""): \(message)"
    }
}

/// How a command line ended on one rank: its exit code and what it has to say.
public struct CommandOutcome: Equatable, Sendable {
    public let exitCode: Int32
    /// For standard output (help).
    public let output: String?
    /// For standard error.
    public let error: String?

    public init(exitCode: Int32, output: String? = nil, error: String? = nil) {
        self.exitCode = exitCode
        self.output = output
        self.error = error
    }

    func print() {
        ConsoleLog.closeLine()
        if let output { Swift.print(output) }
        if let error { writeToStandardError(error + "\n") }
        flushStandardOutput()
    }
}
