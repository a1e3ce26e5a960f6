/// What a trial has done so far: the row of the results file it becomes.
public struct TrialRecord: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable {
        /// Trained through its last rung.
        case ok
        /// Non-finite loss, an invalid setting, any error: `message` says which.
        case failed
        /// Paused below the last rung by early stopping (may still be promoted while
        /// the search runs).
        case stopped
    }

    public let trial: Trial
    public var status: Status
    /// Per rung reached: the score of every fold (one without cross-validation).
    public var rungScores: [[Double]] = []
    /// Epochs trained at the rung reached (nil: the trial's own count).
    public var epochs: Int?
    public var trainSeconds = 0.0
    /// The group that ran its last rung.
    public var group = 0
    public var message = ""

    public init(trial: Trial, status: Status) {
        self.trial = trial
        self.status = status
    }

    /// The rung reached (-1: none).
    public var rung: Int { rungScores.count - 1 }
    public var foldScores: [Double] { rungScores.last ?? [] }
    /// Mean validation score over folds at the rung reached (nan without one).
    public var meanScore: Double { foldScores.isEmpty ? .nan : foldScores.reduce(0, +) / Double(foldScores.count) }
    /// Population standard deviation over folds (scikit-learn's `std_test_score`).
    public var standardDeviation: Double {
        guard !foldScores.isEmpty else { return .nan }
        let mean = meanScore
        return (foldScores.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(foldScores.count)).squareRoot()
    }
}

extension Array where Element == TrialRecord {
    /// 1 for the best: trials that reached a higher rung first (under early stopping
    /// a trial stopped at one epoch is not comparable with one trained for nine),
    /// then by mean score; equal pairs share the lower rank; failed trials rank last.
    public func ranks() -> [Int: Int] {
        let key = { (r: TrialRecord) -> (Int, Double) in r.status == .failed || !r.meanScore.isFinite ? (-2, 0) : (r.rung, r.meanScore) }
        let ordered = sorted { a, b in key(a) != key(b) ? key(a) > key(b) : a.trial.id < b.trial.id }
        var ranks: [Int: Int] = [:]
        for (position, record) in ordered.enumerated() {
            if position > 0, key(ordered[position - 1]) == key(record) {
                ranks[record.trial.id] = ranks[ordered[position - 1].trial.id]
            } else {
                ranks[record.trial.id] = position + 1
            }
        }
        return ranks
    }

    /// The best trial that trained through its last rung, if any.
    public func best() -> TrialRecord? {
        let ranks = ranks()
        return filter { $0.status == .ok && $0.meanScore.isFinite }.min { ranks[$0.trial.id]! < ranks[$1.trial.id]! }
    }
}

private func > (a: (Int, Double), b: (Int, Double)) -> Bool { a.0 != b.0 ? a.0 > b.0 : a.1 > b.1 }
