import Communication
import Coordination
import Foundation
import Persistence

/// What a search found, the same on every rank.
public struct SearchOutcome: Codable, Sendable {
    public var records: [TrialRecord]
    public var groups: Int
    /// Seconds the groups trained over groups x the search's seconds (refit excluded).
    public var busyFraction: Double
    /// Training samples processed by all trials: the compute the search spent.
    public var samples: Int
    public var searchSeconds: Double
    public var wallSeconds = 0.0
    public var refit: RefitOutcome?

    init(board: SearchBoard, started: Double) {
        records = board.records.values.sorted { $0.trial.id < $1.trial.id }
        groups = board.groups
        searchSeconds = MonotonicClock.seconds() - started
        busyFraction = board.busySeconds.reduce(0, +) / (Double(board.groups) * max(searchSeconds, 1e-9))
        samples = board.samples
    }

    public var best: TrialRecord? { records.best() }
    public var defaultRecord: TrialRecord? { records.first { $0.trial.isDefault } }
}

/// The best configuration trained on the whole training set.
public struct RefitOutcome: Codable, Sendable, Equatable {
    public let trial: Int
    public let testAccuracy: Double
    public let seconds: Double
}

extension SearchOutcome {
    /// The closing report: the top trials, and the best against the default.
    public func reportLines(top: Int = 5) -> [String] {
        let ranks = records.ranks()
        let ordered = records.sorted { ranks[$0.trial.id]! != ranks[$1.trial.id]! ? ranks[$0.trial.id]! < ranks[$1.trial.id]! : $0.trial.id < $1.trial.id }
        var lines = ["top \(min(top, ordered.count)) of \(records.count) trials:",
                     "  rank  trial  score            rung  seconds  status   parameters"]
        for record in ordered.prefix(top) {
            let score = record.meanScore.isFinite
                ? Formatting.decimals(record.meanScore * 100, 2) + "%" + (record.foldScores.count > 1 ? " ± " + Formatting.decimals(record.standardDeviation * 100, 2) : "")
                : "-"
            lines.append("  " + [pad("\(ranks[record.trial.id]!)", 4), pad("\(record.trial.id)", 5), pad(score, 15),
                                 pad("\(record.rung)", 4), pad(Formatting.decimals(record.trainSeconds, 1), 7),
                                 pad(record.status.rawValue, 7), record.trial.label + (record.trial.isDefault ? " (default)" : "")]
                .joined(separator: "  "))
        }
        if let best {
            var line = "best: trial \(best.trial.id) (\(best.trial.label)) \(Formatting.percent(best.meanScore))"
            if let base = defaultRecord {
                line += base.trial.id == best.trial.id ? ", which is the default configuration"
                    : " against the default's \(base.status == .failed ? "failure" : Formatting.percent(base.meanScore))"
                        + (base.meanScore.isFinite ? " (\(signed(best.meanScore - base.meanScore)) points)" : "")
            }
            lines.append(line)
        } else {
            lines.append("no trial completed: nothing to refit")
        }
        if let refit {
            lines.append("refit of trial \(refit.trial) on the whole training set: test accuracy \(Formatting.percent(refit.testAccuracy)), "
                         + "\(Formatting.decimals(refit.seconds, 1)) s")
        }
        lines.append("search: \(Formatting.decimals(searchSeconds, 1)) s on \(Formatting.count(groups, "group")), groups busy "
                     + "\(Formatting.decimals(busyFraction * 100, 0))%, \(samples) training samples")
        return lines
    }

    /// The search's metrics file.
    public func metrics(ranksPerTrial: Int, scheduler: SchedulerChoice) -> Metrics {
        var metrics = Metrics()
        metrics["tool"] = "tune"
        metrics["trials"] = records.count
        metrics["trials_ok"] = records.filter { $0.status == .ok }.count
        metrics["trials_failed"] = records.filter { $0.status == .failed }.count
        metrics["trials_stopped"] = records.filter { $0.status == .stopped }.count
        metrics["groups"] = groups
        metrics["ranks_per_trial"] = ranksPerTrial
        metrics["scheduler"] = scheduler.description
        metrics["busy_fraction"] = busyFraction
        metrics["search_seconds"] = searchSeconds
        metrics["wall_seconds"] = wallSeconds
        metrics["train_samples"] = samples
        if let best {
            metrics["best_trial"] = best.trial.id
            metrics["best_parameters"] = Dictionary(uniqueKeysWithValues: best.trial.parameters.map { ($0.name, $0.value) })
            metrics["best_score"] = best.meanScore
            metrics["best_score_std"] = best.standardDeviation
        }
        if let base = defaultRecord, base.meanScore.isFinite { metrics["default_score"] = base.meanScore }
        if let refit { metrics["refit_test_accuracy"] = refit.testAccuracy }
        return metrics
    }

    private func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
    private func signed(_ fraction: Double) -> String { (fraction >= 0 ? "+" : "") + Formatting.decimals(fraction * 100, 2) }
}
