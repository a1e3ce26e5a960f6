import Communication
import Coordination
import Foundation
import NeuralNet
import Persistence

extension TrainingLoop {
    /// The closing evaluation (when no epoch ran), the output files and the closing line.
    func finish(_ run: PreparedRun, _ progress: Progress, started: Double) throws -> Summary {
        var progress = progress
        // A run resumed at its last step trains no epoch: evaluate anyway.
        if progress.evaluated == nil { try evaluate(run, &progress, after: nil, started: MonotonicClock.seconds()) }
        // The model has not changed since its last evaluation made it whole.
        let target = progress.evaluated!
        var summary = progress.summary

        if let path = options.outputs.trace, let trace = run.trace {
            try trace.write(to: path, world: communicator)
            ConsoleLog.info("trace written to \(path) (open in ui.perfetto.dev or chrome://tracing)", rank: rank)
        }
        if let path = options.outputs.model {
            try communicator.together("saving the model") {
                if rank == 0 { try ModelFile.save(target.parameters, model: target.modelName, tool: options.name, to: path) }
            }
            ConsoleLog.info("model saved to \(path)", rank: rank)
        }
        var metrics = commonMetrics(run, summary)
        metrics["evaluations"] = progress.curve.map {
            ["step": $0.step, "train_seconds": $0.trainSeconds, "test_accuracy": $0.accuracy.isFinite ? $0.accuracy as Any : NSNull()]
        }
        let detail = strategy.report(into: &metrics)
        summary.wallSeconds = MonotonicClock.seconds() - started
        metrics["wall_seconds"] = summary.wallSeconds
        ConsoleLog.info("done: \(Formatting.count(summary.steps, run.plan.stepName)), \(Int(summary.samplesPerSecond.rounded())) samples/s, "
                        + "test accuracy \(Formatting.percent(summary.testAccuracy))"
                        + (detail.map { ", \($0)" } ?? "") + ", \(Formatting.decimals(summary.wallSeconds, 2)) s", rank: rank)
        if let path = options.outputs.metrics {
            try communicator.together("writing metrics to \(path)") {
                if rank == 0 { try metrics.write(to: path) }
            }
        }
        return summary
    }

    /// The keys every trainer's metrics file has, one name per concept.
    func commonMetrics(_ run: PreparedRun, _ summary: Summary) -> Metrics {
        var metrics = Metrics()
        metrics["tool"] = options.name
        metrics["ranks"] = communicator.size
        metrics["model"] = run.plan.model
        metrics["parameters"] = run.plan.parameterCount
        metrics["dataset"] = run.data.name
        metrics["epochs"] = options.epochs
        metrics["steps"] = summary.steps
        metrics["global_batch"] = run.plan.globalBatch
        metrics["optimizer"] = options.optimizer.kind.rawValue
        metrics["learning_rate"] = Double(run.schedule.peak)
        metrics["seed"] = NSNumber(value: options.seed)  // a UInt64 may not fit an Int
        metrics["samples_per_sec"] = summary.samplesPerSecond
        let ran = summary.steps - summary.resumedFromStep
        metrics["step_seconds"] = ran > 0 ? summary.trainSeconds / Double(ran) : 0
        metrics["test_accuracy"] = summary.testAccuracy
        metrics["final_loss"] = summary.finalLoss
        metrics["skipped_nonfinite_steps"] = summary.skippedSteps
        metrics["resumed_from_step"] = summary.resumedFromStep
        metrics["train_seconds"] = summary.trainSeconds
        metrics["blas_threads"] = BLAS.threads
        return metrics
    }
}
