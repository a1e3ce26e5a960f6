import Communication
import Datasets
import TrainingLoop

/// What a search trains: Ray Tune's "trainable", scikit-learn's estimator. The
/// search decides what runs where and on which data; the trainable turns a trial's
/// settings into a training run (the command line's: `ddp-train` with those flags).
public protocol SearchTrainable: Sendable {
    /// Throws a clear error if `trial`'s settings are invalid. Local and cheap: the
    /// search checks every trial before any trains.
    func validate(_ trial: Trial) throws

    /// Trains `trial` on `data.train` over `group` and scores it on `data.test`
    /// (a validation fold during the search, the test set in the refit).
    func train(_ trial: Trial, on data: DatasetSplits, over group: any Communicator, plan: TrialRunPlan) throws
        -> TrainingLoop.Summary

    /// An error's text for the results file and the log (the command line names its flags).
    func describe(_ error: any Error) -> String
}

extension SearchTrainable {
    public func describe(_ error: any Error) -> String { "\(error)" }
}

/// How long a run trains and what it keeps.
public struct TrialRunPlan: Sendable {
    /// Epochs to train to (nil: the trial's own count).
    public var epochs: Int?
    /// Where the run keeps a checkpoint at its end and continues from one (a trial
    /// promoted to a longer rung), or nil.
    public var checkpointDirectory: String?
    /// Where the trained model goes (the refit's), or nil.
    public var modelPath: String?

    public init(epochs: Int? = nil, checkpointDirectory: String? = nil, modelPath: String? = nil) {
        self.epochs = epochs
        self.checkpointDirectory = checkpointDirectory
        self.modelPath = modelPath
    }
}
