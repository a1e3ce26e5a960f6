import Communication
import Coordination
import Datasets
import Foundation
import NeuralNet
import Persistence
import TrainingLoop

/// A task-parallel search over the ranks of one job: the world is cut into groups
/// of `ranksPerTrial` ranks, each group trains one trial at a time with the
/// trainable (data parallel over its ranks), and a coordinator on rank 0 hands the
/// trials out as groups become free (docs/tuning.md):
///
///     check      every trial's settings, the groups, the folds: before any training
///     resume     the results file's finished rows are kept, only the rest run
///     search     groups ask for work: train trial t through rung k on every fold,
///                report the scores; the results file is rewritten after each report
///     refit      the best configuration on the whole training set, scored on the
///                test set (never read before), on the group of rank 0
///
/// Trials do not depend on where they run: a trial's initialisation and data order
/// come from the run's seed, as in the trainer run alone with the trial's settings,
/// so the results are the same for any number of groups (times and group ids apart).
public final class HyperparameterSearch {
    public let trials: [Trial]
    public let options: SearchOptions
    public let trainable: SearchTrainable
    public let data: DatasetSplits
    public let world: any Communicator

    public init(trials: [Trial], options: SearchOptions, trainable: SearchTrainable, data: DatasetSplits,
                world: any Communicator) {
        self.trials = trials
        self.options = options
        self.trainable = trainable
        self.data = data
        self.world = world
    }

    /// The trials of `configurations`, numbered from 1 in their order, and the
    /// default configuration (`defaults`: the base values of the space's names) as
    /// trial 0 unless it is one of them, which is then marked as the default.
    public static func trials(configurations: [[Setting]], defaults: [Setting]) -> [Trial] {
        let points = configurations.enumerated().map { Trial(id: $0 + 1, parameters: $1, isDefault: $1 == defaults) }
        return points.contains(where: \.isDefault) ? points : [Trial(id: 0, parameters: defaults, isDefault: true)] + points
    }

    /// The dispatch order: the default configuration first (the report compares
    /// against it), then the others in a seeded shuffle, so an early-stopping
    /// search's first rung is not filled from one corner of a grid.
    func dispatchOrder() -> [Int] {
        var generator = SeededGenerator(seed: options.seed, stream: Self.orderStream)
        let others = trials.filter { !$0.isDefault }.map(\.id).shuffled(using: &generator)
        return trials.filter(\.isDefault).map(\.id) + others
    }

    static let orderStream: UInt64 = 0x6F72_6465  // "orde"

    var groupCount: Int { world.size / options.ranksPerTrial }

    /// Runs the search; every rank returns the same outcome.
    public func run() throws -> SearchOutcome {
        let started = MonotonicClock.seconds()
        let (folds, scheduler) = try check()
        let restored = try restore()
        let group = world.split(color: world.rank / options.ranksPerTrial, key: world.rank)!
        let control = world.duplicate()
        defer {
            control.release()
            group.release()
        }
        ConsoleLog.info("tune: \(Formatting.count(trials.count, "trial")) (\(trials.count - restored.count) to run) on "
                        + "\(Formatting.count(groupCount, "group")) of \(Formatting.count(options.ranksPerTrial, "rank")), "
                        + "scored by \(options.validation.description) of \(data.train.count) training images, "
                        + "scheduler \(options.scheduler.description)", rank: world.rank)
        var coordinator: SearchCoordinator?
        if world.rank == 0 {
            let board = SearchBoard(trials: trials, scheduler: scheduler, restored: restored, results: resultsFile(folds: folds.count),
                                    groups: groupCount, log: { ConsoleLog.info($0, rank: 0) })
            coordinator = SearchCoordinator(board: board, control: control, ranksPerTrial: options.ranksPerTrial)
            coordinator!.start()
        }
        let worker = GroupWorker(trainable: trainable, folds: folds, group: group, control: control,
                                 index: world.rank / options.ranksPerTrial,
                                 checkpoints: scheduler.rungCount > 1 ? options.trialDirectory : nil)
        worker.serve()
        coordinator?.join()
        try world.together("writing \(options.results ?? "the results")") { if let error = coordinator?.error { throw error } }
        var outcome = world.broadcastMessage(coordinator.map { SearchOutcome(board: $0.board, started: started) })
        outcome.refit = try refit(outcome.best, group: group, control: control, epochs: scheduler.epochs(rung: scheduler.rungCount - 1))
        outcome.wallSeconds = MonotonicClock.seconds() - started
        if scheduler.rungCount > 1, world.rank == 0 { try? FileManager.default.removeItem(atPath: options.trialDirectory) }
        return outcome
    }

    /// Everything that can be wrong before training: the same verdict on every rank
    /// (it follows from the flags and the data).
    func check() throws -> (folds: [DatasetSplits], scheduler: TrialScheduler) {
        guard options.ranksPerTrial >= 1, world.size % options.ranksPerTrial == 0 else {
            throw SearchError.groupsDoNotDivide(ranks: world.size, ranksPerTrial: options.ranksPerTrial)
        }
        guard !trials.isEmpty else { throw SearchError.noTrials }
        for trial in trials {
            do {
                try trainable.validate(trial)
            } catch {
                throw SearchError.invalidTrial(trial, trainable.describe(error))
            }
        }
        let splits = try options.validation.splits(labels: data.train.labels, classes: data.train.classes, seed: options.seed)
        let folds = try splits.enumerated().map { k, split in
            try split.data(from: data.train, name: splits.count > 1 ? "\(data.name) fold \(k + 1)/\(splits.count)" : "\(data.name) holdout")
        }
        let exempt = trials.first(where: \.isDefault)?.id
        return (folds, try options.scheduler.make(order: dispatchOrder(), exempt: exempt))
    }

    /// The finished rows of an earlier run of this search (rank 0 reads them; only
    /// the coordinator needs them).
    func restore() throws -> [TrialRecord] {
        guard options.resume, let file = resultsFile(folds: options.validation.foldCount) else { return [] }
        return try world.together("reading \(file.path) to resume") {
            guard world.rank == 0, FileManager.default.fileExists(atPath: file.path) else { return [] }
            return try file.read(matching: trials)
        }
    }

    func resultsFile(folds: Int) -> ResultsFile? {
        options.results.map { ResultsFile(path: $0, names: trials.first!.parameters.map(\.name), folds: folds) }
    }

    /// The best configuration retrained on the whole training set and scored on the
    /// test set, on the group of rank 0 (the others wait without spinning).
    func refit(_ best: TrialRecord?, group: any Communicator, control: any Communicator, epochs: Int?) throws -> RefitOutcome? {
        guard options.refit, let best else { return nil }
        let outcome: RefitOutcome
        if world.rank < options.ranksPerTrial {
            ConsoleLog.info("refit: trial \(best.trial.id) (\(best.trial.label)) on the whole training set of "
                            + "\(data.train.count) images\(epochs.map { ", \($0) epochs" } ?? "")", rank: world.rank)
            let started = MonotonicClock.seconds()
            let summary = try ConsoleLog.muted {
                try trainable.train(best.trial, on: data, over: group, plan: TrialRunPlan(epochs: epochs, modelPath: options.modelPath))
            }
            outcome = RefitOutcome(trial: best.trial.id, testAccuracy: summary.testAccuracy, seconds: MonotonicClock.seconds() - started)
            if world.rank == 0 {
                for rank in options.ranksPerTrial..<world.size { control.sendMessage(outcome, to: rank, tag: SearchTag.release) }
            }
        } else {
            outcome = control.receiveMessage(RefitOutcome.self, from: 0, tag: SearchTag.release).message
        }
        return outcome
    }
}

extension ValidationScheme {
    var foldCount: Int {
        switch self {
        case .holdout: 1
        case .crossValidation(let k): k
        }
    }
}

/// One group's side of the search: ask for work, run it on every fold, report.
struct GroupWorker {
    let trainable: SearchTrainable
    let folds: [DatasetSplits]
    let group: any Communicator
    let control: any Communicator
    let index: Int
    /// Where multi-rung trials keep their checkpoints (nil: one rung, none kept).
    let checkpoints: String?

    func serve() {
        var report: WorkReport?
        while case .train(let work) = nextAssignment(after: report) {
            report = run(work)
        }
    }

    /// The leader asks the coordinator and passes the answer on to its group.
    func nextAssignment(after report: WorkReport?) -> Assignment {
        guard group.rank == 0 else { return group.receiveMessage(Assignment.self, from: 0, tag: SearchTag.assignment).message }
        control.sendMessage(WorkRequest(group: index, report: report), to: 0, tag: SearchTag.request)
        let assignment = control.receiveMessage(Assignment.self, from: 0, tag: SearchTag.assignment).message
        for member in 1..<group.size { group.sendMessage(assignment, to: member, tag: SearchTag.assignment) }
        return assignment
    }

    /// One rung of one trial on every fold. A failure is the trial's, not the
    /// search's: it is reported with the group's agreed message and the search goes on.
    func run(_ work: TrialWork) -> WorkReport {
        let started = MonotonicClock.seconds()
        var scores: [Double] = [], samples = 0
        do {
            try ConsoleLog.muted {
                for (k, fold) in folds.enumerated() {
                    let directory = checkpoints.map { "\($0)/trial-\(work.trial.id)/fold-\(k)" }
                    let summary = try trainable.train(work.trial, on: fold, over: group,
                                                      plan: TrialRunPlan(epochs: work.epochs, checkpointDirectory: directory))
                    scores.append(summary.testAccuracy)
                    samples += summary.samples
                }
            }
            return WorkReport(trial: work.trial.id, rung: work.rung, foldScores: scores, message: "",
                              seconds: MonotonicClock.seconds() - started, samples: samples)
        } catch {
            // Failures inside the loop are agreed: every rank throws, the failing one knows why.
            let mine = (error as? GroupFailure).map { $0.error.map(trainable.describe) ?? "" } ?? trainable.describe(error)
            let message = group.allgatherBytes(Array(mine.utf8)).map { String(decoding: $0, as: UTF8.self) }
                .first { !$0.isEmpty } ?? "failed on another rank"
            return WorkReport(trial: work.trial.id, rung: work.rung, foldScores: nil, message: message,
                              seconds: MonotonicClock.seconds() - started, samples: samples)
        }
    }
}

public enum SearchError: Error, CustomStringConvertible {
    case groupsDoNotDivide(ranks: Int, ranksPerTrial: Int)
    case noTrials
    case invalidTrial(Trial, String)

    public var description: String {
        switch self {
        case .groupsDoNotDivide(let ranks, let r):
            "\(r) ranks per trial do not divide the \(ranks) ranks of the job into groups (use a divisor of \(ranks))"
        case .noTrials: "the search has no trials"
        case .invalidTrial(let trial, let why): "trial \(trial.id) (\(trial.label)): \(why)"
        }
    }
}
