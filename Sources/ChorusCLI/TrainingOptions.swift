import ArgumentParser
import Collectives
import Datasets
import Foundation
import NeuralNet
import TrainingLoop

extension ModelKind: ExpressibleByArgument {}
extension AllreduceAlgorithm: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension LearningRatePolicy.Scaling: ExpressibleByArgument {}

/// How the learning rate decays after warm-up.
public enum DecayName: String, CaseIterable, ExpressibleByArgument {
    case constant, cosine, step
}

/// The dataset names the tools accept.
public enum DatasetName: String, CaseIterable, ExpressibleByArgument {
    case fashionMNIST = "fashion-mnist"
    case synthetic
}

/// What to train and on what: the model and the dataset.
public struct ModelDataOptions: ParsableArguments {
    @Option(help: "Model to train: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    public var model: ModelKind = .lenet

    // Unconditional: "-64" is a (bad) width to report, not an unknown flag.
    @Option(parsing: .unconditional, help: ArgumentHelp("Hidden layer widths of the mlp model, comma-separated.", valueName: "w1,w2,..."))
    public var hidden: String = "512,512"

    @Option(help: "Dataset: fashion-mnist (IDX files) or synthetic (generated, same shapes).")
    public var dataset: DatasetName = .fashionMNIST

    @Option(help: "Directory holding the Fashion-MNIST IDX files (.gz or plain).")
    public var dataDir: String = FashionMNIST.defaultDirectory

    public init() {}

    public func validate() throws {
        _ = try hiddenWidths()
    }

    public func hiddenWidths() throws -> [Int] {
        let parts = hidden.split(separator: ",", omittingEmptySubsequences: false)
        let widths = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, widths.count == parts.count, widths.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--hidden must be positive integers separated by commas, like 512,512 (got '\(hidden)')")
        }
        return widths
    }

    public func modelDescription() throws -> ModelDescription {
        ModelDescription(kind: model, hidden: try hiddenWidths())
    }

    public var datasetChoice: DatasetChoice {
        switch dataset {
        case .fashionMNIST: .fashionMNIST(directory: dataDir)
        case .synthetic: .synthetic
        }
    }
}

/// The optimizer of a step and its learning-rate schedule.
public struct OptimizationOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Learning rate.")
    public var lr: Float = 0.05

    @Option(help: "Optimizer: \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", ")) (PyTorch's update rules).")
    public var optimizer: OptimizerKind = .momentum

    @Option(name: .customLong("momentum"), parsing: .unconditional, help: "Momentum of the momentum and nesterov optimizers (default 0.9; 0 with momentum: plain SGD).")
    var momentumFlag: Float?

    /// 0.9 unless given. Only the momentum optimizers take one: PyTorch's
    /// SGD(momentum=0.9) is `--optimizer momentum --momentum 0.9` here, and a momentum
    /// given to another optimizer is an error rather than silently unused.
    public var momentum: Float { momentumFlag ?? 0.9 }

    @Option(parsing: .unconditional, help: "Weight decay: L2 for sgd/momentum/nesterov/adam/adagrad/rmsprop, decoupled for adamw.")
    public var weightDecay: Float?

    @Option(parsing: .unconditional, help: "Adam/AdamW beta1.")
    public var beta1: Float = 0.9

    @Option(parsing: .unconditional, help: "Adam/AdamW beta2.")
    public var beta2: Float = 0.999

    @Option(parsing: .unconditional, help: "Epsilon of adam, adamw, adagrad, rmsprop (default: PyTorch's).")
    public var eps: Float?

    @Option(help: "Learning-rate scaling: none, or linear (--lr is for one rank's batch; multiplied by ranks x --accumulate).")
    public var lrScale: LearningRatePolicy.Scaling = .none

    @Option(parsing: .unconditional, help: "Linear learning-rate warm-up over this many optimizer steps.")
    public var warmupSteps: Int = 0

    @Option(help: "Decay after warm-up: constant, cosine (to 0 at the last step) or step (x --lr-gamma every --lr-step-size steps).")
    public var lrDecay: DecayName = .constant

    @Option(parsing: .unconditional, help: "Steps between decays for --lr-decay step.")
    public var lrStepSize: Int = 1000

    @Option(parsing: .unconditional, help: "Factor per decay for --lr-decay step.")
    public var lrGamma: Float = 0.1

    public init() {}

    public func validate() throws {
        guard lr.isFinite, lr > 0 else { throw ValidationError("--lr must be a positive number (got \(lr))") }
        guard momentum.isFinite, momentum >= 0, momentum < 1 else {
            throw ValidationError("--momentum must be in [0, 1) (got \(momentum))")
        }
        if optimizer == .nesterov && momentum == 0 {
            throw ValidationError("--optimizer nesterov needs --momentum above 0")
        }
        if let momentumFlag, momentumFlag > 0, optimizer != .momentum && optimizer != .nesterov {
            throw ValidationError("--momentum \(momentumFlag) needs --optimizer momentum or nesterov (--optimizer \(optimizer.rawValue) "
                                  + "has none; PyTorch's SGD(momentum=m) is --optimizer momentum --momentum m)")
        }
        if let weightDecay, !(weightDecay.isFinite && weightDecay >= 0) {
            throw ValidationError("--weight-decay must be a non-negative number (got \(weightDecay))")
        }
        for (name, beta) in [("--beta1", beta1), ("--beta2", beta2)] where !(beta >= 0 && beta < 1) {
            throw ValidationError("\(name) must be in [0, 1) (got \(beta))")
        }
        if let eps, !(eps.isFinite && eps > 0) { throw ValidationError("--eps must be a positive number (got \(eps))") }
        guard warmupSteps >= 0 else { throw ValidationError("--warmup-steps must not be negative (got \(warmupSteps))") }
        guard lrStepSize >= 1 else { throw ValidationError("--lr-step-size must be at least 1 (got \(lrStepSize))") }
        guard lrGamma.isFinite, lrGamma > 0, lrGamma <= 1 else { throw ValidationError("--lr-gamma must be in (0, 1] (got \(lrGamma))") }
    }

    public var optimizerSettings: OptimizerSettings {
        // AdamW's customary default decay is 0.01 (PyTorch's); the others default to none.
        OptimizerSettings(kind: optimizer, momentum: momentum, weightDecay: weightDecay ?? (optimizer == .adamw ? 0.01 : 0),
                          beta1: beta1, beta2: beta2, epsilon: eps)
    }

    public var learningRatePolicy: LearningRatePolicy {
        let decay: LearningRateSchedule.Decay = switch lrDecay {
        case .constant: .constant
        case .cosine: .cosine
        case .step: .step(every: lrStepSize, gamma: lrGamma)
        }
        return LearningRatePolicy(scaling: lrScale, warmupSteps: warmupSteps, decay: decay)
    }
}

/// The seed, what a run writes, how often it reports, and its threads.
public struct RunOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Seed for initialisation, shuffling and synthetic data.")
    public var seed: UInt64 = 42

    @Option(help: ArgumentHelp("Write the trained model here (safetensors).", valueName: "file"))
    public var saveModel: String?

    @Option(help: ArgumentHelp("Write run metrics here (JSON).", valueName: "file"))
    public var metricsJson: String?

    @Option(help: ArgumentHelp("Write a Chrome trace-event timeline of every rank here (JSON; ui.perfetto.dev).", valueName: "file"))
    public var trace: String?

    @Option(parsing: .unconditional, help: "Print progress every this many steps.")
    public var logEvery: Int = 50

    @Option(parsing: .unconditional, help: "Also evaluate every this many steps (0: after each epoch only); the metrics' evaluations list the curve.")
    public var evalEvery: Int = 0

    @Option(parsing: .unconditional, help: "OpenBLAS threads per rank (default: the node's cores divided by its ranks).")
    public var threads: Int?

    public init() {}

    public func validate() throws {
        guard logEvery >= 1 else { throw ValidationError("--log-every must be at least 1 (got \(logEvery))") }
        guard evalEvery >= 0 else { throw ValidationError("--eval-every must not be negative (got \(evalEvery))") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1 (got \(threads))") }
    }
}

/// Flags every training tool that runs epochs shares: what to train, on what, for how
/// long, with which optimizer, and where results go.
public struct CommonTrainingOptions: ParsableArguments {
    @OptionGroup public var subject: ModelDataOptions

    @Option(parsing: .unconditional, help: "Passes over the training set.")
    public var epochs: Int = 1

    @Option(parsing: .unconditional, help: "Stop after this many optimizer steps (default: run all epochs).")
    public var steps: Int?

    @OptionGroup public var optimization: OptimizationOptions
    @OptionGroup public var run: RunOptions

    public init() {}

    public func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1 (got \(epochs))") }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1 (got \(steps))") }
    }

    public func modelDescription() throws -> ModelDescription { try subject.modelDescription() }
    public var datasetChoice: DatasetChoice { subject.datasetChoice }
    public var seed: UInt64 { run.seed }
    public var threads: Int? { run.threads }

    /// The loop's options for the tool `name`, with the checkpoint and watchdog flags.
    public func loopOptions(name: String, reliability: ReliabilityOptions) -> LoopOptions {
        LoopOptions.from(name: name, dataset: datasetChoice, epochs: epochs, steps: steps, optimization: optimization,
                         run: run, reliability: reliability)
    }
}

extension LoopOptions {
    /// The loop's options from the shared flag groups.
    public static func from(name: String, dataset: DatasetChoice, epochs: Int, steps: Int?, optimization: OptimizationOptions,
                            run: RunOptions, reliability: ReliabilityOptions) -> LoopOptions {
        var options = LoopOptions(name: name, dataset: dataset, epochs: epochs, maxSteps: steps, seed: run.seed,
                                  optimizer: optimization.optimizerSettings, learningRate: optimization.lr)
        options.learningRatePolicy = optimization.learningRatePolicy
        options.logEvery = run.logEvery
        options.evaluateEvery = run.evalEvery
        options.threads = run.threads
        options.outputs = Outputs(model: run.saveModel, metrics: run.metricsJson, trace: run.trace)
        options.checkpoints = reliability.checkpointDir.map {
            CheckpointPolicy(directory: $0, every: reliability.checkpointEvery ?? 0, keep: reliability.keepCheckpoints,
                             resume: reliability.resume)
        }
        options.timeoutSeconds = reliability.timeout
        options.describeTimeout = { "--timeout \(Int($0))" }
        options.nonFiniteGradients = reliability.skipNonfinite ? .skip : .stop
        return options
    }
}
