/// Asynchronous successive halving (ASHA; Li et al., "A System for Massively
/// Parallel Hyperparameter Tuning", MLSys 2020, Algorithm 2).
///
/// Rungs end at r_k = grace x eta^k epochs for every such value below `maxEpochs`,
/// and the last at `maxEpochs` (Ray Tune's `AsyncHyperBandScheduler` milestones).
/// Trials report a score at the end of each rung and pause there. A free group asks
/// for work and gets, in this order:
///
///     for k from the second-highest rung down to 0:
///         the best trial of rung k's top ⌊n_k / eta⌋ not yet promoted  → rung k + 1
///     otherwise a new trial                                            → rung 0
///     otherwise, while trials are still running                        → wait
///     otherwise                                                        → finish
///
/// (n_k: trials that have reported at rung k.) Promotion never waits for a rung to
/// fill, which is what makes it asynchronous: a group is never idle while there is
/// a new trial, and a trial promoted early on a few results may be one a synchronous
/// halving would have stopped. Trials still paused below the top rung when the
/// search ends are the stopped ones. About n / eta^k of n trials reach rung k and a
/// promoted trial continues from its rung's end, so the search spends about
/// n x Σ_k (r_k - r_{k-1}) / eta^k epochs instead of n x maxEpochs (27 trials,
/// rungs 1, 3, 9: 63 epochs against 243); docs/tuning.md has the measured figures.
///
/// The default configuration (when given) is promoted as soon as it reports: the
/// search's report compares the best against it at full length.
public final class ASHAScheduler: TrialScheduler {
    public let milestones: [Int]
    public let reductionFactor: Int
    private var queue: [Int]
    private let exempt: Int?
    /// Per rung: (trial, score) in report order.
    private var reported: [[(trial: Int, score: Double)]]
    private var promoted: [Set<Int>]
    private var running = Set<Int>()

    public init(order: [Int], graceEpochs: Int, maxEpochs: Int, reductionFactor: Int, exempt: Int? = nil) throws {
        guard graceEpochs >= 1 else { throw SchedulerError.badGrace(graceEpochs) }
        guard maxEpochs >= graceEpochs else { throw SchedulerError.maxBelowGrace(max: maxEpochs, grace: graceEpochs) }
        guard reductionFactor >= 2 else { throw SchedulerError.badReduction(reductionFactor) }
        milestones = Self.milestones(grace: graceEpochs, max: maxEpochs, eta: reductionFactor)
        self.reductionFactor = reductionFactor
        queue = order.reversed()
        self.exempt = exempt
        reported = Array(repeating: [], count: milestones.count)
        promoted = Array(repeating: [], count: milestones.count)
    }

    static func milestones(grace: Int, max: Int, eta: Int) -> [Int] {
        var rungs: [Int] = []
        var epochs = grace
        while epochs < max {
            rungs.append(epochs)
            epochs *= eta
        }
        return rungs + [max]
    }

    public func epochs(rung: Int) -> Int? { milestones[rung] }
    public var rungCount: Int { milestones.count }

    public func next() -> SchedulerDecision {
        if let exempt, let rung = pausedRung(of: exempt) { return promote(exempt, from: rung) }
        for k in stride(from: milestones.count - 2, through: 0, by: -1) {
            if let trial = promotable(rung: k) { return promote(trial, from: k) }
        }
        if let trial = queue.popLast() {
            running.insert(trial)
            return .train(trial: trial, rung: 0)
        }
        return running.isEmpty ? .finish : .wait
    }

    /// The best of rung k's top ⌊n_k / eta⌋ that has not been promoted yet.
    func promotable(rung k: Int) -> Int? {
        let top = reported[k].count / reductionFactor
        return ranked(rung: k).prefix(top).first { !promoted[k].contains($0) }
    }

    /// Rung k's trials, best first (ties: the earlier trial id).
    func ranked(rung k: Int) -> [Int] {
        reported[k].sorted { $0.score != $1.score ? $0.score > $1.score : $0.trial < $1.trial }.map(\.trial)
    }

    private func promote(_ trial: Int, from rung: Int) -> SchedulerDecision {
        promoted[rung].insert(trial)
        running.insert(trial)
        return .train(trial: trial, rung: rung + 1)
    }

    /// The rung `trial` is paused at (reported there, not promoted, not the last).
    private func pausedRung(of trial: Int) -> Int? {
        (0..<milestones.count - 1).last { k in reported[k].contains { $0.trial == trial } && !promoted[k].contains(trial) }
    }

    public func report(trial: Int, rung: Int, score: Double?) {
        running.remove(trial)
        if let score { reported[rung].append((trial, score)) }
    }

    public func restore(trial: Int, rungScores: [Double], failed: Bool) {
        queue.removeAll { $0 == trial }
        for (k, score) in rungScores.enumerated() {
            reported[k].append((trial, score))
            if k + 1 < rungScores.count || (failed && k + 1 < milestones.count) { promoted[k].insert(trial) }
        }
    }

    public func verdict(trial: Int, rung: Int) -> String? {
        guard rung + 1 < milestones.count else { return "completed the last rung (\(milestones[rung]) epochs)" }
        if trial == exempt { return "the default configuration: runs on to \(milestones.last!) epochs" }
        let position = (ranked(rung: rung).firstIndex(of: trial) ?? 0) + 1
        let top = reported[rung].count / reductionFactor
        return "rung \(rung) (\(milestones[rung]) epochs): \(ordinal(position)) of \(reported[rung].count), "
            + (position <= top ? "in the top 1/\(reductionFactor): promotable" : "paused (promoted if it enters the top 1/\(reductionFactor))")
    }

    private func ordinal(_ n: Int) -> String {
        let suffix = (11...13).contains(n % 100) ? "th" : ["th", "st", "nd", "rd", "th", "th", "th", "th", "th", "th"][n % 10]
        return "\(n)\(suffix)"
    }
}

public enum SchedulerError: Error, CustomStringConvertible, Equatable {
    case badGrace(Int)
    case maxBelowGrace(max: Int, grace: Int)
    case badReduction(Int)

    public var description: String {
        switch self {
        case .badGrace(let g): "the grace period must be at least 1 epoch (got \(g))"
        case .maxBelowGrace(let max, let grace): "the maximum of \(max) epochs is below the grace period of \(grace)"
        case .badReduction(let eta): "the reduction factor must be at least 2 (got \(eta))"
        }
    }
}
