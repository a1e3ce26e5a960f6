import Communication
import Coordination
import Datasets
import NeuralNet
import Persistence

/// The one training-loop skeleton every trainer runs in: a strategy (data parallel,
/// pipeline, ...) supplies the steps, the loop supplies the rest.
///
///     set up     load the data, plan the strategy, agree on the configuration,
///                start the strategy (sub-groups, engines, initial broadcast)
///     resume     from the newest checkpoint every rank can read, when asked
///     train      epochs x steps, up to the step limit: fault injection, the
///                scheduled learning rate, periodic checkpoints, a progress line
///                every `logEvery` steps, evaluation after every epoch
///     finish     trace, model and metrics files; the strategy releases its groups
///
/// Every rank of `communicator` runs it; the communicator may be any group (a search
/// trial's, a parameter server's workers'), not only the world. Anything that can
/// fail on one rank alone runs inside `together`, so a failure ends every rank with
/// one message; anything that depends on flags is compared before the first message.
public final class TrainingLoop {
    public let strategy: TrainingStrategy
    public let options: LoopOptions
    public let communicator: any Communicator

    public init(strategy: TrainingStrategy, options: LoopOptions, communicator: any Communicator) {
        self.strategy = strategy
        self.options = options
        self.communicator = communicator
    }

    /// What a finished run measured.
    public struct Summary: Sendable {
        /// Optimizer steps completed, including those before a resume.
        public var steps = 0
        public var resumedFromStep = 0
        /// Samples trained on by this process (steps since the resume x global batch).
        public var samples = 0
        public var skippedSteps = 0
        /// Seconds in training epochs (evaluation excluded), and in the whole run.
        public var trainSeconds = 0.0
        public var wallSeconds = 0.0
        /// Mean loss of the last log window.
        public var finalLoss = Double.nan
        public var testAccuracy = Double.nan

        public var samplesPerSecond: Double { trainSeconds > 0 ? Double(samples) / trainSeconds : 0 }

        public init() {}
    }

    /// Runs the whole training and returns what it measured (the same on every rank).
    ///
    /// Once the strategy has started, it is closed (its groups released) however the
    /// run ends: every failure from there on is one the ranks agree on, so they all
    /// close at the same point; a search running many trials in one job leaks nothing.
    public func run() throws -> Summary {
        let started = MonotonicClock.seconds()
        let run = try setUp()
        defer {
            run.watchdog?.stop()
            strategy.close()
        }
        var progress = try resume(run)
        try train(run, &progress)
        return try finish(run, progress, started: started)
    }

    var rank: Int { communicator.rank }
}

// MARK: Set-up

/// Everything fixed once the ranks agree.
struct PreparedRun {
    let data: DatasetSplits
    let plan: StrategyPlan
    let totalSteps: Int
    let schedule: LearningRateSchedule
    let trace: TraceRecorder?
    let watchdog: Watchdog?
    let scope: CheckpointScope?
}

extension TrainingLoop {
    func setUp() throws -> PreparedRun {
        let ranksOnNode = configureBLASThreads(requested: options.threads, world: communicator)
        keepLargeAllocationsInHeap()
        try checkOutputs()
        let data = try communicator.together("loading \(options.dataset.name)") { try options.dataset.load(seed: options.seed) }
        let setup = TrainingSetup(communicator: communicator, data: data, seed: options.seed, ranksOnNode: ranksOnNode)
        let plan = try communicator.together("setting up \(options.name)") { try strategy.plan(setup) }
        try communicator.agree(on: [ConfigurationField(TrainingField.model, "\(plan.model) with \(plan.parameterCount) parameters")]
                               + plan.configuration + configuration(data))
        let (totalSteps, schedule) = try self.schedule(for: plan)
        announce(data, plan, totalSteps: totalSteps, schedule: schedule)

        let trace = options.outputs.trace.map { _ in TraceRecorder(world: communicator) }
        let watchdog = options.timeoutSeconds > 0
            ? Watchdog(timeout: options.timeoutSeconds, rank: rank, communicator: communicator, describeLimit: options.describeTimeout)
            : nil
        let optimizer = options.optimizer, firstRate = schedule.rate(atStep: 0)
        try strategy.start(TrainingServices(communicator: communicator, trace: trace, watchdog: watchdog,
                                            screen: GradientScreen(policy: options.nonFiniteGradients, reportingRank: rank),
                                            makeOptimizer: { optimizer.make(learningRate: firstRate) },
                                            optimizerName: optimizer.kind.rawValue, totalSteps: totalSteps))
        let scope: CheckpointScope?
        do {
            scope = try prepareCheckpoints(data)
        } catch {
            strategy.close()
            throw error
        }
        return PreparedRun(data: data, plan: plan, totalSteps: totalSteps, schedule: schedule, trace: trace,
                           watchdog: watchdog, scope: scope)
    }

    /// The settings every trainer shares, compared across ranks with the strategy's.
    func configuration(_ data: DatasetSplits) -> [ConfigurationField] {
        let outputs = options.outputs
        return [
            ConfigurationField(TrainingField.dataset, "\(data.name), \(data.train.count) train / \(data.test.count) test images"),
            ConfigurationField(TrainingField.optimizer,
                               "\(options.optimizer.description), lr \(options.learningRate) (\(options.learningRatePolicy))"),
            ConfigurationField(TrainingField.seed, "\(options.seed)"),
            ConfigurationField(TrainingField.runLength, "\(options.epochs)/\(options.maxSteps.map(String.init) ?? "all")"),
            // The next three decide when the loop itself communicates: a checkpoint's
            // and a progress line's agreement, a skipped step's verdict.
            ConfigurationField(TrainingField.checkpoints, options.checkpoints.map {
                "\($0.directory), every \($0.every) steps, \($0.resume ? "resuming" : "not resuming")"
            } ?? "none"),
            ConfigurationField(TrainingField.logging, "\(options.logEvery)"),
            ConfigurationField(TrainingField.evaluation, options.evaluateEvery > 0 ? "\(options.evaluateEvery)" : "each epoch"),
            ConfigurationField(TrainingField.nonFiniteGradients, "\(options.nonFiniteGradients)"),
            // Each output is written collectively: a rank that skips one would leave
            // the others waiting at the end of the run.
            // (the paths too: rank 0 writes them all, so another rank's would be ignored).
            ConfigurationField(TrainingField.outputs, "model \(outputs.model ?? "none"), metrics \(outputs.metrics ?? "none"), "
                               + "trace \(outputs.trace ?? "none")"
                               + outputs.strategyFiles.sorted { $0.key < $1.key }.map { ", \($0.key) \($0.value)" }.joined()),
        ]
    }

    func announce(_ data: DatasetSplits, _ plan: StrategyPlan, totalSteps: Int, schedule: LearningRateSchedule) {
        let policy = options.learningRatePolicy
        let warmup = policy.warmupSteps > 0 ? " after \(policy.warmupSteps) warm-up steps" : ""
        let lines = [
            "\(options.name): \(plan.model) (\(plan.parameterCount) parameters) on \(data.name) "
                + "(\(data.train.count) train / \(data.test.count) test images)",
        ] + plan.description + [
            (plan.countsEpochs ? "global batch \(plan.globalBatch), \(plan.stepsPerEpoch) steps/epoch, \(totalSteps) steps, "
                               : "\(totalSteps) \(plan.stepName)s, ")
                + "\(options.optimizer.description) lr \(schedule.peak)\(warmup)",
        ]
        ConsoleLog.info(lines.joined(separator: "\n"), rank: rank)
    }
}
