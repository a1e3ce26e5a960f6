import Communication
import Coordination
import Datasets
import Foundation
import NeuralNet
import Persistence

/// Two outputs of one run name the same file: one would overwrite the other.
public struct OutputConflict: Error, CustomStringConvertible {
    /// The outputs' names in `Outputs` ("model", "metrics", "trace").
    public let outputs: [String]
    public let path: String

    public var description: String { "the \(outputs.joined(separator: " and ")) outputs both name \(path)" }
}

/// A checkpoint directory written by another tool (or in another arrangement).
public struct ForeignCheckpoints: Error, CustomStringConvertible {
    public let directory: String
    public let writer: String
    public let run: String

    public var description: String {
        "\(directory) holds checkpoints of \(writer); \(run) neither resumes from nor writes into it (choose another directory)"
    }
}

/// The learning rate after scaling is not a finite number.
public struct LearningRateOverflow: Error, CustomStringConvertible {
    public let rate: Float
    public let scale: Int

    public var description: String { "the learning rate \(rate) scaled by \(scale) is not a finite number" }
}

/// Checks the output paths that are given (rank 0 writes them all, so rank 0 checks):
/// that no two name one file, that each can be written, and removes the temporaries
/// an interrupted write left. Collective; `extra` runs on rank 0 after, for checks of
/// the caller's own (a search's results file that exists without --resume).
public func checkOutputFiles(_ outputs: [(name: String, path: String?)], over communicator: any Communicator,
                             extra: () throws -> Void = {}) throws {
    let given = outputs.compactMap { name, path in path.map { (name: name, path: $0) } }
    try communicator.together("checking the output files") {
        guard communicator.rank == 0 else { return }
        for (name, path) in given {
            let same = given.filter { $0.path == path }.map(\.name)
            if same.count > 1, same[0] == name { throw OutputConflict(outputs: same, path: path) }
            try AtomicFile.checkWritable(file: path)
            AtomicFile.removeInterruptedWrites(of: path)
        }
        try extra()
    }
}

extension TrainingLoop {
    /// Checks every output path before any work: a model lost after an hour of
    /// training because its directory does not exist is the failure this prevents.
    func checkOutputs() throws {
        let outputs = options.outputs
        try checkOutputFiles([("model", outputs.model), ("metrics", outputs.metrics), ("trace", outputs.trace)]
                                 + outputs.strategyFiles.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                             over: communicator)
    }

    /// The run's length in steps (the step limit, or every epoch, whichever is
    /// shorter, without overflowing) and its learning-rate schedule.
    func schedule(for plan: StrategyPlan) throws -> (totalSteps: Int, schedule: LearningRateSchedule) {
        let (allEpochs, overflow) = options.epochs.multipliedReportingOverflow(by: plan.stepsPerEpoch)
        let totalSteps = min(options.maxSteps ?? Int.max, overflow ? Int.max : allEpochs)
        let policy = options.learningRatePolicy
        let scale = policy.scaling == .linear ? plan.linearScalingFactor : 1
        let peak = options.learningRate * Float(scale)
        guard peak.isFinite else { throw LearningRateOverflow(rate: options.learningRate, scale: scale) }
        return (totalSteps, LearningRateSchedule(peak: peak, warmupSteps: policy.warmupSteps, totalSteps: totalSteps,
                                                 decay: policy.decay))
    }

    /// The scope of this rank's checkpoints, after checking the directory: that it
    /// holds no checkpoints arranged for another tool, that it can be written, and
    /// without the temporary files a save interrupted by a crash left behind.
    func prepareCheckpoints(_ data: DatasetSplits) throws -> CheckpointScope? {
        guard let policy = options.checkpoints else { return nil }
        // Another tool's or another dataset's checkpoint would resume at a position
        // that means nothing here.
        let scope = strategy.checkpointScope(directory: policy.directory)?
            .adding(layout: ["tool": options.name, "dataset": "\(data.name), \(data.train.count) train images"])
        try communicator.together("using the checkpoint directory \(policy.directory)") {
            if rank == 0 { try CheckpointDirectory(root: policy.directory).claim(for: options.name, perRank: scope?.directory) }
        }
        try communicator.together("using the checkpoint directory \(scope?.directory ?? policy.directory)") {
            guard let scope, scope.writes else { return }
            try AtomicFile.checkWritable(directory: scope.directory)
            try CheckpointDirectory(root: scope.directory).removeInterruptedSaves()
        }
        return scope
    }
}

/// The root of a run's checkpoints.
struct CheckpointDirectory {
    let root: String

    /// Refuses a directory whose checkpoints are arranged otherwise than this run's:
    /// one folder per pipeline stage or parameter server, or all in the root. (Checkpoints of the same
    /// arrangement record their tool in their layout, which resume compares.)
    /// `perRank` is where this run keeps its own files, when that is not the root.
    func claim(for tool: String, perRank: String?) throws {
        try AtomicFile.checkWritable(directory: root)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        let filesAtRoot = names.contains { $0.hasSuffix(Checkpoint.suffix) }
        let stageFolders = names.contains { $0.hasPrefix("stage-") || $0.hasPrefix("server-") }
        let usesFolders = perRank != nil && perRank != root
        if filesAtRoot && usesFolders {
            throw ForeignCheckpoints(directory: root, writer: "a run that keeps them in one folder", run: tool)
        }
        if stageFolders && !usesFolders {
            throw ForeignCheckpoints(directory: root, writer: "a run that keeps a folder per pipeline stage or server", run: tool)
        }
    }

    /// Deletes the `*.tmp.<pid>` files saves left when their process died mid-write.
    func removeInterruptedSaves() throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        for name in names where name.hasSuffix(Checkpoint.suffix) || name.contains(Checkpoint.suffix + ".tmp.") {
            let checkpoint = name.components(separatedBy: ".tmp.")[0]
            AtomicFile.removeInterruptedWrites(of: (root as NSString).appendingPathComponent(checkpoint))
        }
    }
}
