import ArgumentParser
import ChorusMPI
import Training

#if canImport(Glibc)
import Glibc
#endif

/// A command-line tool that runs on every rank of an MPI job.
public protocol MPICommand: ParsableCommand {
    func run(world: Communicator) throws
}

extension MPICommand {
    /// The entry point of every Chorus tool: start MPI, parse the arguments (the same
    /// on every rank, so a bad flag fails on all of them and rank 0 alone prints it),
    /// run, and always finalize MPI before exiting, with a non-zero code on failure.
    public static func main() {
        let world = MPIRuntime.initialize()
        let command: Self
        do {
            let parsed = try parseAsRoot()
            guard let ours = parsed as? Self else {
                // `--help` parses to the library's built-in help command: print the
                // help once (rank 0) and end cleanly on every rank.
                if world.rank == 0 { print(helpMessage()) }
                MPIRuntime.finalize()
                Glibc.exit(0)
            }
            command = ours
        } catch {
            let code = exitCode(for: error)
            if world.rank == 0 {
                let message = fullMessage(for: error)
                if code == .success { print(message) } else { fputs(message + "\n", stderr) }
            }
            MPIRuntime.finalize()
            Glibc.exit(code.rawValue)
        }
        do {
            try command.run(world: world)
        } catch is ReportedFailure {
            MPIRuntime.finalize()
            Glibc.exit(1)
        } catch {
            // Errors not routed through `together` are the same on every rank
            // (derived from the flags alone), so rank 0 speaks for all.
            if world.rank == 0 { ConsoleLog.error("\(error)", rank: 0, worldSize: 1) }
            MPIRuntime.finalize()
            Glibc.exit(1)
        }
        MPIRuntime.finalize()
    }
}
