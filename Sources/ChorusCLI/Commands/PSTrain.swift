import ArgumentParser
import Communication
import ParameterServer
import TrainingLoop

/// The consistency model as `--mode` names it.
enum ConsistencyMode: String, ExpressibleByArgument, CaseIterable {
    case bsp, ssp, asp
}

/// `mpirun -n 5 ps-train --servers 1 --mode ssp --staleness 2`: parameter-server training.
public struct PSTrain: MPICommand {
    public static let configuration = CommandConfiguration(
        commandName: "ps-train",
        abstract: "Parameter-server training: servers hold the parameters, workers push gradients and pull parameters.",
        discussion: """
            Run under MPI, e.g. `mpirun -n 5 ps-train --servers 1 --mode ssp --staleness 2`: the first --servers \
            ranks hold a range of the parameters each and apply the optimizer; the others are workers, each \
            training on its shard of every global batch (--batch-size per worker). --mode bsp waits for every \
            worker at every clock (the same run as ddp-train on the workers), ssp lets a worker run up to \
            --staleness clocks ahead of the slowest, asp never waits. --slow-worker and --straggle simulate \
            stragglers by sleeping.
            """)

    @OptionGroup var common: CommonTrainingOptions
    @OptionGroup var reliability: ReliabilityOptions

    @Option(parsing: .unconditional, help: "Server ranks (the first ones); the other ranks are workers.")
    var servers: Int = 1

    @Option(help: "Consistency model: bsp (synchronous), ssp (bounded staleness, with --staleness) or asp (asynchronous).")
    var mode: ConsistencyMode = .bsp

    @Option(parsing: .unconditional, help: "With --mode ssp: how many clocks a worker may run ahead of the slowest.")
    var staleness: Int?

    @Option(parsing: .unconditional, help: "Samples per worker per iteration (a global batch is this times the workers).")
    var batchSize: Int = 32

    @Option(help: ArgumentHelp("Make worker rank R persistently F times slower (it sleeps (F-1) x its compute time).",
                               valueName: "R:F"))
    var slowWorker: String?

    @Option(help: ArgumentHelp("Make every worker's iteration F times slower with probability P (drawn from the seed).",
                               valueName: "P:F"))
    var straggle: String?

    public init() {}

    public func validate() throws {
        guard servers >= 1 else { throw ValidationError("--servers must be at least 1 (got \(servers))") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
        if let staleness {
            guard mode == .ssp else { throw ValidationError("--staleness applies to --mode ssp only (got --mode \(mode.rawValue))") }
            guard staleness >= 0 else { throw ValidationError("--staleness must be at least 0 (got \(staleness))") }
        }
        _ = try stragglers()
    }

    func consistency() -> ConsistencyModel {
        switch mode {
        case .bsp: .bsp
        // The bound most SSP papers start from when none is given.
        case .ssp: .ssp(staleness: staleness ?? 2)
        case .asp: .asp
        }
    }

    func stragglers() throws -> Stragglers {
        var stragglers = Stragglers()
        if let slowWorker {
            let (rank, factor) = try Self.pair(slowWorker, flag: "--slow-worker", form: "R:F")
            guard let rank = Int(exactly: rank), rank >= 0 else {
                throw ValidationError("--slow-worker's rank must be a whole number of at least 0 (got '\(slowWorker)')")
            }
            guard factor >= 1 else { throw ValidationError("--slow-worker's factor must be at least 1 (got '\(slowWorker)')") }
            stragglers.persistent = .init(rank: rank, factor: factor)
        }
        if let straggle {
            let (probability, factor) = try Self.pair(straggle, flag: "--straggle", form: "P:F")
            guard (0...1).contains(probability) else {
                throw ValidationError("--straggle's probability must be between 0 and 1 (got '\(straggle)')")
            }
            guard factor >= 1 else { throw ValidationError("--straggle's factor must be at least 1 (got '\(straggle)')") }
            stragglers.transient = .init(probability: probability, factor: factor)
        }
        return stragglers
    }

    /// `A:B` as two finite numbers; a factor above 1000 would make a straggler sleep
    /// for minutes per iteration, which is a typo, not an experiment.
    static func pair(_ text: String, flag: String, form: String) throws -> (Double, Double) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { Double($0) }
        guard parts.count == 2, let a = parts[0], let b = parts[1], a.isFinite, b.isFinite, b <= 1_000 else {
            throw ValidationError("\(flag) takes \(form), two numbers like \(form == "R:F" ? "2:3" : "0.2:4") "
                                  + "(a factor of at most 1000), got '\(text)'")
        }
        return (a, b)
    }

    public func run(world: any Communicator) throws {
        var options = ParameterServerOptions(model: try common.modelDescription(), batchPerWorker: batchSize,
                                             servers: servers, consistency: consistency())
        options.stragglers = try stragglers()
        let loop = common.loopOptions(name: "ps-train", reliability: reliability)
        let strategy = ParameterServerStrategy(options: options, communicator: world)
        _ = try TrainingLoop(strategy: strategy, options: loop, communicator: world).run()
    }
}
