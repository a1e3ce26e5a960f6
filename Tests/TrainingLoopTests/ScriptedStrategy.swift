import ChorusTesting
import Communication
import Coordination
import Datasets
import Foundation
import NeuralNet
import Persistence
import TrainingLoop

/// A strategy whose steps are scripted: one 4-element tensor, a gradient that depends
/// on the step and the rank, and a log of every call the loop makes. What the loop
/// does around the steps (positions, limits, checkpoints, resume, skipping) is then
/// visible in the log and in the parameters.
final class ScriptedStrategy: TrainingStrategy {
    let communicator: any Communicator
    let stepsPerEpoch: Int
    /// What this rank puts in the agreed configuration.
    var scriptName = "script"
    /// Steps (0-based) whose gradient is NaN on rank `nanRank`.
    var nanSteps: Set<Int> = []
    var nanRank = 0
    /// Steps (0-based) this strategy leaves out itself: no update, reported as skipped.
    var omittedSteps: Set<Int> = []
    /// Whether `carried` shows in the loss.
    var carriesIntoLoss = false
    /// Thrown by `plan` on rank `failingRank`.
    var planFailure: (rank: Int, error: any Error)?
    /// Each rank holds different gradients, as pipeline stages do, and agrees on the screen's verdict.
    var agreeOnScreen = false

    let parameters = FlatParameters(slots: [ParameterSlot(name: "layer.w", shape: [4], offset: 0, layerIndex: 0)])
    /// State outside the parameters and the optimizer, different on every rank (like a
    /// hook's residuals): it grows by rank + 1 each step and adds to the loss.
    private(set) var carried: [Float] = [1]
    private var optimizer: Optimizer!
    private var services: TrainingServices!
    private(set) var log: [String] = []
    private(set) var steps: [StepContext] = []

    init(communicator: any Communicator, stepsPerEpoch: Int) {
        self.communicator = communicator
        self.stepsPerEpoch = stepsPerEpoch
    }

    func plan(_ setup: TrainingSetup) throws -> StrategyPlan {
        log.append("plan")
        if let planFailure, planFailure.rank == communicator.rank { throw planFailure.error }
        return StrategyPlan(configuration: [ConfigurationField("the script", scriptName)], stepsPerEpoch: stepsPerEpoch,
                            model: "scripted", parameterCount: parameters.count, globalBatch: 8 * communicator.size,
                            linearScalingFactor: communicator.size,
                            lossReporting: .mean(over: communicator, contributors: communicator.size), description: [])
    }

    func start(_ services: TrainingServices) throws {
        log.append("start")
        self.services = services
        optimizer = services.makeOptimizer()
    }

    func beginEpoch(_ epoch: Int) { log.append("epoch \(epoch)") }

    func step(_ context: StepContext) throws -> StepOutcome {
        steps.append(context)
        log.append("step \(context.step)")
        carried[0] += Float(communicator.rank + 1)
        for i in 0..<4 { parameters.gradients[i] = Float(i + 1) * 0.01 * Float(context.step % 5 + 1) }
        if nanSteps.contains(context.step) && communicator.rank == nanRank { parameters.gradients[2] = .nan }
        let loss = Double(context.step + communicator.rank) + (carriesIntoLoss ? Double(carried[0]) : 0)
        if omittedSteps.contains(context.step) { return StepOutcome(loss: loss, skipped: true) }
        guard try services.screen.admits(parameters, range: 0..<4, step: context.step, layerName: { _ in "layer" },
                                         loss: loss, agreeingOver: agreeOnScreen ? communicator : nil) else {
            return StepOutcome(loss: loss, skipped: true)
        }
        optimizer.learningRate = context.learningRate
        optimizer.step(values: parameters.values, gradients: parameters.gradients)
        return StepOutcome(loss: loss)
    }

    func checkpointScope(directory: String) -> CheckpointScope? {
        CheckpointScope(directory: directory, writes: communicator.rank == 0, parameters: parameters, slots: parameters.slots,
                        optimizer: optimizer, layout: ["model": "scripted", "ranks": "\(communicator.size)"],
                        saveState: { ["carried": self.carried] },
                        restoreState: { self.carried = $0["carried"] ?? [1] })
    }

    func prepareEvaluation() throws -> EvaluationTarget {
        log.append("evaluate")
        return EvaluationTarget(model: FirstClass(), group: communicator, parameters: parameters, modelName: "scripted")
    }

    func report(into metrics: inout Metrics) -> String? {
        metrics["scripted_steps"] = steps.count
        return "scripted"
    }

    func close() { log.append("close") }
}

/// Always predicts class 0.
final class FirstClass: Classifier {
    func predict(_ input: Tensor) -> Tensor {
        Tensor(shape: [input.batch, 2]) { out in
            for row in 0..<input.batch { out[2 * row] = 1; out[2 * row + 1] = 0 }
        }
    }
}

/// 16 training and 8 test "images" of one pixel; a quarter of the test labels are 0.
let tinyData: DatasetSplits = {
    let train = try! LabeledImages(pixels: Array(repeating: 0, count: 16), labels: Array(repeating: 1, count: 16),
                                   imageShape: [1], classes: 2)
    let test = try! LabeledImages(pixels: Array(repeating: 0, count: 8), labels: [0, 1, 1, 1, 0, 1, 1, 1],
                                  imageShape: [1], classes: 2)
    return DatasetSplits(name: "tiny", train: train, test: test)
}()

func loopOptions(epochs: Int = 5, maxSteps: Int? = nil) -> LoopOptions {
    var options = LoopOptions(name: "scripted", dataset: .provided(tinyData), epochs: epochs, maxSteps: maxSteps, seed: 1,
                              optimizer: OptimizerSettings(kind: .momentum, momentum: 0.9), learningRate: 0.1)
    options.logEvery = 2
    options.timeoutSeconds = 0
    options.threads = 1
    return options
}

func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "chorus-loop-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
