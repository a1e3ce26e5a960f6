import Communication
import Coordination
import Persistence

/// A rank has no checkpoint to resume from while others have one.
public struct MissingCheckpoint: Error, CustomStringConvertible {
    public let directory: String
    /// The newest step another rank has.
    public let newestElsewhere: Int

    public var description: String {
        "\(directory) has no usable checkpoint, while other ranks have one of step \(newestElsewhere); "
            + "resume needs a checkpoint of the same step everywhere"
    }
}

extension TrainingLoop {
    /// The position to start from: the newest step every checkpointing rank can read
    /// (a crash during a save can leave one directory a step behind the others), or
    /// the beginning when there are no checkpoints yet.
    func resume(_ run: PreparedRun) throws -> Progress {
        guard let policy = options.checkpoints, policy.resume else { return Progress() }
        let scope = run.scope
        let found = try communicator.together("looking for checkpoints in \(scope?.directory ?? policy.directory)") {
            try scope.flatMap { try Checkpoint.newestValid(in: $0.directory) }
        }
        let newest = Int64(found?.checkpoint.step ?? -1)
        let latest = communicator.allreduce(newest, op: .max)
        guard latest >= 0 else {
            ConsoleLog.info("no checkpoint in \(policy.directory) yet: starting from the beginning", rank: rank)
            return Progress()
        }
        // Ranks that keep no checkpoints do not hold the others back.
        let common = Int(communicator.allreduce(scope == nil ? Int64.max : newest, op: .min))
        let resumed = try communicator.together("resuming from \(scope?.directory ?? policy.directory)") {
            () -> (checkpoint: Checkpoint, path: String)? in
            guard let scope, let found else {
                if let scope { throw MissingCheckpoint(directory: scope.directory, newestElsewhere: Int(latest)) }
                return nil
            }
            guard common >= 0 else { return nil }  // a rank without one reports it
            let (checkpoint, path) = found.checkpoint.step == common
                ? (found.checkpoint, found.path) : try Checkpoint.read(step: common, in: scope.directory)
            try checkpoint.apply(to: scope.parameters, slots: scope.slots, optimizer: scope.optimizer,
                                 expecting: scope.layout, path: path)
            let mine = "rank\((scope.stateGroup ?? communicator).rank)."
            try scope.restoreState(checkpoint.extraState.reduce(into: [:]) { own, entry in
                if entry.key.hasPrefix(mine) { own[String(entry.key.dropFirst(mine.count))] = entry.value }
            })
            return (checkpoint, path)
        }
        for reason in found?.skipped ?? [] { ConsoleLog.info("skipped an unreadable checkpoint: \(reason)", rank: rank) }
        // Every checkpoint of the step holds the same position; ranks without one learn it here.
        var progress = Progress()
        progress.epoch = Int(communicator.allreduce(Int64(resumed?.checkpoint.epoch ?? -1), op: .max))
        progress.stepInEpoch = Int(communicator.allreduce(Int64(resumed?.checkpoint.stepInEpoch ?? -1), op: .max))
        progress.summary.steps = common
        progress.summary.resumedFromStep = common
        let subject = scope?.subject.map { "\($0) " } ?? ""
        ConsoleLog.info("resumed \(subject)from step \(common) (\(resumed?.path ?? policy.directory)), epoch \(progress.epoch + 1)",
                        rank: rank)
        if common >= run.totalSteps {
            ConsoleLog.info("the checkpoint is at step \(common) and this run ends at step \(run.totalSteps): nothing to train",
                            rank: rank)
        }
        return progress
    }

    /// Writes a checkpoint when one is due after the step just finished.
    ///
    /// A strategy's extra state may differ per rank (a hook's error-feedback residuals),
    /// so the state of every rank of the scope's state group is gathered to the writer
    /// (its rank 0), which stores them all as `rank<r>.<name>` (r: the rank in that
    /// group); a resuming rank takes back its own.
    func checkpointIfDue(_ run: PreparedRun, _ progress: Progress, epoch: Int, stepInEpoch: Int) throws {
        guard let policy = options.checkpoints, policy.isDue(afterStep: progress.summary.steps, totalSteps: run.totalSteps) else { return }
        let next = stepInEpoch + 1 < run.plan.stepsPerEpoch ? (epoch, stepInEpoch + 1) : (epoch + 1, 0)
        // Ranks without a scope keep no state; a scope without its own state group
        // gathers over the whole loop, so then every rank has one.
        var gathered: [[UInt8]]?
        if let scope = run.scope {
            let group = scope.stateGroup ?? communicator
            let own = scope.saveState().sorted { $0.key < $1.key }
            gathered = group.gatherBytes(Safetensors.encode(own.map {
                Safetensors.Entry(name: $0.key, shape: [$0.value.count], values: $0.value)
            }))
            if scope.writes != (group.rank == 0) { fatalError("a checkpoint scope's writer must be rank 0 of its state group") }
        }
        try communicator.together("writing a checkpoint to \(run.scope?.directory ?? policy.directory)") {
            guard let scope = run.scope, scope.writes else { return }
            var extraState: [String: [Float]] = [:]
            for (rank, bytes) in (gathered ?? []).enumerated() {
                for entry in try Safetensors.decode(bytes, name: "rank \(rank)'s state").entries {
                    extraState["rank\(rank).\(entry.name)"] = entry.values
                }
            }
            try Checkpoint.save(scope.parameters, slots: scope.slots, optimizer: scope.optimizer,
                                extraState: extraState, step: progress.summary.steps,
                                epoch: next.0, stepInEpoch: next.1, layout: scope.layout, to: scope.directory, keep: policy.keep)
        }
    }
}
