import Communication
import Coordination
import Foundation

/// The coordinator's state: every trial's record, the scheduler, the groups waiting
/// for work. Pure over messages: `handle` takes one request and returns the
/// assignments to send, so a test drives it with any interleaving of reports it
/// scripts; the coordinator thread only moves the messages.
final class SearchBoard {
    let trials: [Int: Trial]
    let scheduler: TrialScheduler
    let results: ResultsFile?
    let groups: Int
    private(set) var records: [Int: TrialRecord]
    /// Groups told to wait (ASHA: no new trial, no promotion yet), oldest first.
    private(set) var parked: [Int] = []
    private(set) var finishedGroups = Set<Int>()
    /// Per group, seconds spent training and the samples processed.
    private(set) var busySeconds: [Double]
    private(set) var samples = 0
    private(set) var rungsRun = 0
    /// Where progress lines go (rank 0's console).
    let log: (String) -> Void

    init(trials: [Trial], scheduler: TrialScheduler, restored: [TrialRecord], results: ResultsFile?, groups: Int,
         log: @escaping (String) -> Void) {
        self.trials = Dictionary(uniqueKeysWithValues: trials.map { ($0.id, $0) })
        self.scheduler = scheduler
        self.results = results
        self.groups = groups
        self.log = log
        busySeconds = Array(repeating: 0, count: groups)
        records = Dictionary(uniqueKeysWithValues: restored.map { ($0.trial.id, $0) })
        for record in restored {
            scheduler.restore(trial: record.trial.id, rungScores: record.rungScores.map(Self.mean), failed: record.status == .failed)
        }
    }

    var isFinished: Bool { finishedGroups.count == groups }

    /// Records the report, then hands out work: to the requesting group, and to the
    /// parked groups the report may have made work for.
    func handle(_ request: WorkRequest) throws -> [(group: Int, assignment: Assignment)] {
        if let report = request.report { try record(report, group: request.group) }
        var replies: [(group: Int, assignment: Assignment)] = []
        var free = parked + [request.group]
        parked = []
        while let group = free.first {
            let decision = scheduler.next()
            if decision == .wait {
                parked = free
                break
            }
            free.removeFirst()
            replies.append((group, assignment(for: decision, group: group)))
            // Nothing is queued or running any more: every free group is done.
            if decision == .finish {
                replies += free.map { ($0, .finish) }
                free = []
            }
        }
        for (group, assignment) in replies where assignment == .finish { finishedGroups.insert(group) }
        return replies
    }

    /// After a failure of the board itself: every group waiting, and the one asking,
    /// is told to finish (the search stops instead of training on unsaved).
    func abandon(_ request: WorkRequest) -> [(group: Int, assignment: Assignment)] {
        let replies = (parked + [request.group]).map { (group: $0, assignment: Assignment.finish) }
        parked = []
        finishedGroups.formUnion(replies.map(\.group))
        return replies
    }

    private func assignment(for decision: SchedulerDecision, group: Int) -> Assignment {
        guard case .train(let id, let rung) = decision else { return .finish }
        let trial = trials[id]!
        let epochs = scheduler.epochs(rung: rung)
        let previous = rung > 0 ? scheduler.epochs(rung: rung - 1) ?? 0 : 0
        log("trial \(id) \(rung > 0 ? "promoted to rung \(rung)" : "starts")\(epochs.map { " (to \($0) epochs)" } ?? "") "
            + "on group \(group): \(trial.label)")
        return .train(TrialWork(trial: trial, rung: rung, epochs: epochs, previousEpochs: previous))
    }

    private func record(_ report: WorkReport, group: Int) throws {
        let trial = trials[report.trial]!
        var record = records[report.trial] ?? TrialRecord(trial: trial, status: .stopped)
        record.group = group
        record.trainSeconds += report.seconds
        record.epochs = scheduler.epochs(rung: report.rung)
        busySeconds[group] += report.seconds
        samples += report.samples
        rungsRun += 1
        let score = report.foldScores.map(Self.mean)
        if let scores = report.foldScores {
            record.rungScores.append(scores)
            record.status = report.rung == scheduler.rungCount - 1 ? .ok : .stopped
        } else {
            record.status = .failed
            record.message = report.message
        }
        records[report.trial] = record
        scheduler.report(trial: report.trial, rung: report.rung, score: score)
        try results?.write(Array(records.values))
        log(line(for: record, report: report))
    }

    private func line(for record: TrialRecord, report: WorkReport) -> String {
        let ended = records.values.filter { $0.status != .stopped }.count
        let outcome: String
        if record.status == .failed {
            outcome = "failed: \(record.message)"
        } else {
            let spread = record.foldScores.count > 1 ? " ± \(Formatting.decimals(record.standardDeviation * 100, 2))" : ""
            outcome = "score \(Formatting.decimals(record.meanScore * 100, 2))%\(spread)"
                + (record.foldScores.count > 1 ? " over \(record.foldScores.count) folds" : "")
                + (scheduler.verdict(trial: record.trial.id, rung: report.rung).map { "; \($0)" } ?? "")
        }
        return "trial \(record.trial.id) \(record.status == .failed ? "" : "rung \(report.rung) ")done in "
            + "\(Formatting.decimals(report.seconds, 1)) s: \(outcome) [\(ended)/\(trials.count) ended\(timeLeft(ended: ended))]"
    }

    /// Trials left times the mean seconds of a rung so far, over the groups: a plain
    /// estimate, exact for a grid of equal trials.
    private func timeLeft(ended: Int) -> String {
        guard rungsRun > 0, ended < trials.count else { return "" }
        let perRung = busySeconds.reduce(0, +) / Double(rungsRun)
        let left = Double(trials.count - ended) * perRung / Double(groups)
        return ", about \(Formatting.decimals(left, 0)) s left"
    }

    static func mean(_ scores: [Double]) -> Double { scores.reduce(0, +) / Double(max(scores.count, 1)) }
}
