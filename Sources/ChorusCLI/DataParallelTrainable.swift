import ArgumentParser
import Communication
import Datasets
import HyperparameterSearch
import TrainingLoop

/// A search trial as a `ddp-train` run: the base flags with the trial's settings
/// appended (the last of a repeated flag wins), parsed and validated by `ddp-train`
/// itself, so a trial is exactly `mpirun -n R ddp-train <base> <trial settings>`
/// on its fold's data.
struct DataParallelTrainable: SearchTrainable {
    let base: [String]
    /// OpenBLAS threads per rank, unless the base flags say: the world's ranks on a
    /// node share its cores, not only a trial's group.
    let threads: Int?

    func command(for trial: Trial) throws -> DDPTrain {
        try DDPTrain.parse(base + trial.parameters.flatMap { ["--\($0.name)", $0.value] })
    }

    func validate(_ trial: Trial) throws {
        do {
            _ = try command(for: trial)
        } catch {
            throw TrialSettingsError(message: DDPTrain.message(for: error))
        }
    }

    func train(_ trial: Trial, on data: DatasetSplits, over group: any Communicator, plan: TrialRunPlan) throws
        -> TrainingLoop.Summary {
        try command(for: trial).train(on: group) { options in
            var options = options
            options.dataset = .provided(data)
            if let epochs = plan.epochs { options.epochs = epochs }
            if options.threads == nil { options.threads = threads }
            options.outputs = Outputs(model: plan.modelPath)
            options.checkpoints = plan.checkpointDirectory.map {
                CheckpointPolicy(directory: $0, every: 0, keep: 1, resume: true, atEnd: true)
            }
            return options
        }
    }

    func describe(_ error: any Error) -> String { CommandLineMessages.describe(error) }
}

/// A trial's settings that `ddp-train` rejects, in its words.
struct TrialSettingsError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
