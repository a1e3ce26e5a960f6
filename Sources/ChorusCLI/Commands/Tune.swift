import ArgumentParser
import Communication
import Coordination
import Foundation
import HyperparameterSearch
import Persistence
import TrainingLoop

/// `mpirun -n N tune --grid lr=0.01,0.1 --cv 3 [ddp-train flags]`: a hyper-parameter
/// search over groups of ranks, each trial a `ddp-train` run.
public struct Tune: MPICommand {
    public static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Hyper-parameter search: grid, random or ASHA, trials spread over groups of ranks, each a ddp-train run.",
        discussion: """
            Run under MPI, e.g. `mpirun -n 4 tune --grid lr=0.01,0.05,0.1 --grid momentum=0,0.9 --cv 3 --epochs 1`. \
            The world is cut into groups of --ranks-per-trial ranks; free groups take the next trial. Every flag \
            tune does not know is a ddp-train flag of the base configuration (e.g. --model, --epochs, --seed); the \
            settings a search can vary: \(TunableSetting.names) (hidden widths written 256/256). Scores are validation accuracies on the training set; the test set is used only by the refit.
            """)

    @OptionGroup var space: SearchSpaceOptions

    @Option(parsing: .unconditional, help: "Ranks that train one trial together (data parallel); must divide the number of ranks.")
    var ranksPerTrial: Int = 1

    @Option(parsing: .unconditional, help: "Score by stratified K-fold cross-validation on the training set (K >= 2).")
    var cv: Int?

    @Option(parsing: .unconditional, help: "Without --cv: the stratified share of the training set held out for scoring (default 0.1).")
    var validationFraction: Double?

    @Option(help: "fifo (every trial to its end) or asha (asynchronous successive halving, needs --max-epochs).")
    var scheduler: SchedulerName = .fifo

    @Option(parsing: .unconditional, help: "ASHA: epochs of the last rung.")
    var maxEpochs: Int?

    @Option(parsing: .unconditional, help: "ASHA: epochs of the first rung.")
    var graceEpochs: Int = 1

    @Option(parsing: .unconditional, help: "ASHA: each rung keeps the top 1/this of the one below.")
    var reductionFactor: Int = 3

    @Option(help: ArgumentHelp("Write one row per trial here (CSV, rewritten atomically as each trial ends).", valueName: "file"))
    var results: String?

    @Flag(help: "Read --results and run only the trials it lacks.")
    var resume = false

    @Flag(inversion: .prefixedNo, help: "Retrain the best configuration on the whole training set and report its test accuracy.")
    var refit = true

    @Option(help: ArgumentHelp("Write the refit model here (safetensors).", valueName: "file"))
    var saveModel: String?

    @Option(help: ArgumentHelp("Write the search's metrics here (JSON).", valueName: "file"))
    var metricsJson: String?

    @Option(help: ArgumentHelp("ASHA: where paused trials keep their checkpoints (default: --results with .trials, or tune.trials).",
                               valueName: "dir"))
    var trialDir: String?

    @Argument(parsing: .allUnrecognized, help: "The base configuration: ddp-train flags.")
    var base: [String] = []

    enum SchedulerName: String, ExpressibleByArgument, CaseIterable { case fifo, asha }

    /// ddp-train flags that tune sets itself for its trials.
    static let reservedBaseFlags = ["--checkpoint-dir", "--checkpoint-every", "--keep-checkpoints", "--trace", "--help"]

    public init() {}

    public func validate() throws {
        guard ranksPerTrial >= 1 else { throw ValidationError("--ranks-per-trial must be at least 1 (got \(ranksPerTrial))") }
        if let cv, cv < 2 { throw ValidationError("--cv must be at least 2 folds (got \(cv)); without --cv a validation split scores") }
        if cv != nil && validationFraction != nil { throw ValidationError("--cv and --validation-fraction exclude each other") }
        if let validationFraction, !(validationFraction > 0 && validationFraction < 1) {
            throw ValidationError("--validation-fraction must be in (0, 1) (got \(validationFraction))")
        }
        if resume && results == nil { throw ValidationError("--resume needs --results (the file it resumes from)") }
        if scheduler == .asha {
            guard let maxEpochs else { throw ValidationError("--scheduler asha needs --max-epochs") }
            guard graceEpochs >= 1 else { throw ValidationError("--grace-epochs must be at least 1 (got \(graceEpochs))") }
            guard maxEpochs >= graceEpochs else {
                throw ValidationError("--max-epochs (\(maxEpochs)) must be at least --grace-epochs (\(graceEpochs))")
            }
            guard reductionFactor >= 2 else { throw ValidationError("--reduction-factor must be at least 2 (got \(reductionFactor))") }
        } else if maxEpochs != nil {
            throw ValidationError("--max-epochs needs --scheduler asha")
        }
        for flag in base where Self.reservedBaseFlags.contains(where: { flag == $0 || flag.hasPrefix($0 + "=") }) {
            throw ValidationError("\(flag) is not a base flag of tune: it keeps the trials' checkpoints itself")
        }
        // The base flags must be a valid ddp-train command line on their own.
        do {
            _ = try DDPTrain.parse(base)
        } catch {
            throw ValidationError("the base configuration (the ddp-train flags) is invalid: \(DDPTrain.message(for: error))")
        }
        let space = try self.space.space()
        if scheduler == .asha, space.names.contains("epochs") {
            throw ValidationError("--scheduler asha sets every rung's epochs: epochs cannot be searched (use --max-epochs)")
        }
        try space.validate()
    }

    public func run(world: any Communicator) throws {
        let baseCommand = try DDPTrain.parse(base)
        let space = try self.space.space()
        let defaults = try space.names.map { Setting($0, try TunableSetting.named($0).value(baseCommand)) }
        let trials = HyperparameterSearch.trials(configurations: try space.configurations(seed: baseCommand.common.seed),
                                                 defaults: defaults)
        let options = searchOptions(seed: baseCommand.common.seed)
        try checkOutputs(world: world)
        let data = try world.together("loading \(baseCommand.common.datasetChoice.name)") {
            try baseCommand.common.datasetChoice.load(seed: baseCommand.common.seed)
        }
        let trainable = DataParallelTrainable(base: base, threads: baseCommand.common.threads ?? blasThreadsPerRank(world).threads)
        let search = HyperparameterSearch(trials: trials, options: options, trainable: trainable, data: data, world: world)
        let outcome = try search.run()
        ConsoleLog.info(outcome.reportLines().joined(separator: "\n"), rank: world.rank)
        if let saveModel, outcome.refit != nil { ConsoleLog.info("model saved to \(saveModel)", rank: world.rank) }
        if let metricsJson {
            try world.together("writing metrics to \(metricsJson)") {
                if world.rank == 0 { try outcome.metrics(ranksPerTrial: ranksPerTrial, scheduler: options.scheduler).write(to: metricsJson) }
            }
        }
    }

    func searchOptions(seed: UInt64) -> SearchOptions {
        var options = SearchOptions()
        options.ranksPerTrial = ranksPerTrial
        options.validation = cv.map { .crossValidation(folds: $0) } ?? .holdout(fraction: validationFraction ?? 0.1)
        if scheduler == .asha, let maxEpochs {
            options.scheduler = .asha(graceEpochs: graceEpochs, maxEpochs: maxEpochs, reductionFactor: reductionFactor)
        }
        options.results = results
        options.resume = resume
        options.trialDirectory = trialDir ?? (results.map { $0 + ".trials" } ?? "tune.trials")
        options.seed = seed
        options.refit = refit
        options.modelPath = saveModel
        return options
    }

    /// The output files are checked before any trial trains (rank 0 writes them all).
    func checkOutputs(world: any Communicator) throws {
        try checkOutputFiles([("results", results), ("model", saveModel), ("metrics", metricsJson)], over: world) {
            if let results, !resume, FileManager.default.fileExists(atPath: results) {
                throw ValidationError("\(results) exists: pass --resume to continue that search, or choose another file")
            }
        }
    }
}
