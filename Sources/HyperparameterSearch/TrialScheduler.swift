/// Decides what a free group does next and which trials stop early. Pure: it sees
/// trial ids and scores, never ranks or time, so a test can script its inputs and
/// assert every decision (the coordinator calls it from one thread).
///
/// A trial runs in rungs: rung k trains it up to `epochs(rung: k)` epochs (nil: as
/// many as its own settings say) and reports one score. A scheduler with one rung
/// runs every trial to the end (FIFO); ASHA stops the weaker ones at lower rungs.
public protocol TrialScheduler: AnyObject {
    /// Epochs a trial has trained when rung `rung` ends, or nil for the trial's own.
    func epochs(rung: Int) -> Int?
    var rungCount: Int { get }

    /// What a free group should do now.
    func next() -> SchedulerDecision

    /// A trial's rung ended: with its score, or without one (the trial failed).
    func report(trial: Int, rung: Int, score: Double?)

    /// A rung result from an earlier run of the search (its results file), restored
    /// on resume before any `next`.
    func restore(trial: Int, rungScores: [Double], failed: Bool)

    /// The rung that decides whether a reported trial runs on: a line for the log.
    func verdict(trial: Int, rung: Int) -> String?
}

public enum SchedulerDecision: Equatable, Sendable {
    /// Train this trial through this rung (from the end of the previous one).
    case train(trial: Int, rung: Int)
    /// Nothing to hand out now, but trials still running may make a promotion.
    case wait
    /// The search is over for this group.
    case finish
}

/// Every trial to its end, in the order given: no early stopping.
public final class FIFOScheduler: TrialScheduler {
    private var queue: [Int]
    private var running = Set<Int>()

    /// `order`: the trial ids in dispatch order.
    public init(order: [Int]) { queue = order.reversed() }

    public func epochs(rung: Int) -> Int? { nil }
    public var rungCount: Int { 1 }

    public func next() -> SchedulerDecision {
        guard let trial = queue.popLast() else { return .finish }
        running.insert(trial)
        return .train(trial: trial, rung: 0)
    }

    public func report(trial: Int, rung: Int, score: Double?) { running.remove(trial) }

    public func restore(trial: Int, rungScores: [Double], failed: Bool) { queue.removeAll { $0 == trial } }

    public func verdict(trial: Int, rung: Int) -> String? { nil }
}
