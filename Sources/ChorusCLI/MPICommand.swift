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

    /// Parses `arguments` and runs the command on `world`. Nothing here needs MPI:
    /// tests run whole command lines on in-process ranks.
    public static func execute(_ arguments: [String], world: any Communicator) -> CommandOutcome {
        let command: Self
        switch agreeOnParsing(arguments, world: world) {
        case .run(let parsed): command = parsed
        case .stop(let outcome): return outcome
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

    /// Parses on every rank, then agrees: the command runs only if it parsed on
    /// every rank. Flags usually are the same everywhere, but an MPMD launch, a
    /// per-rank environment or a wrapper can give one rank a bad flag (or `--help`);
    /// that rank would stop while the others waited for it in their first collective.
    /// Instead every rank stops, the lowest rank with the most serious outcome says
    /// why (an error before help), and every rank exits with that outcome's code.
    private static func agreeOnParsing(_ arguments: [String], world: any Communicator) -> Parsing<Self> {
        let mine: Parsing<Self>
        do {
            let parsed = try parseAsRoot(arguments)
            // `--help` parses to the library's built-in help command.
            mine = (parsed as? Self).map(Parsing.run) ?? .stop(CommandOutcome(exitCode: 0, output: helpMessage()))
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            mine = .stop(code == .success ? CommandOutcome(exitCode: 0, output: message)
                         : CommandOutcome(exitCode: code.rawValue, error: message))
        }
        // -1: runs; 0: stops cleanly (help); above: an error's code.
        let severity: Int32
        switch mine {
        case .run: severity = -1
        case .stop(let outcome): severity = outcome.exitCode
        }
        let worst = world.allreduce(severity, op: .max)
        if worst < 0 { return mine }
        let speaker = Int(world.allreduce(Int32(severity == worst ? world.rank : world.size), op: .min))
        guard world.rank == speaker, case .stop(let outcome) = mine else { return .stop(CommandOutcome(exitCode: worst)) }
        return .stop(outcome)
    }

    private static func errorLine(_ message: String, world: any Communicator) -> String {
        "error\(world.size > 1 ? " [rank \(world.rank)]" : ""): \(message)"
    }
}

/// What parsing decided on one rank: run the command, or stop with an outcome.
private enum Parsing<Command> {
    case run(Command)
    case stop(CommandOutcome)
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
