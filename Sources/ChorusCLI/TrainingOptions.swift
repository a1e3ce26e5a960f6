import ArgumentParser
import Collectives
import Datasets
import NeuralNet
import Training
import Foundation

extension ModelKind: ExpressibleByArgument {}
extension AllreduceAlgorithm: ExpressibleByArgument {}

/// The dataset names the tools accept.
public enum DatasetName: String, CaseIterable, ExpressibleByArgument {
    case fashionMNIST = "fashion-mnist"
    case synthetic
}

/// Flags every training tool shares: what to train, on what, for how long, and
/// where results go.
public struct CommonTrainingOptions: ParsableArguments {
    @Option(help: "Model to train: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    public var model: ModelKind = .lenet

    @Option(help: ArgumentHelp("Hidden layer widths of the mlp model, comma-separated.", valueName: "w1,w2,..."))
    public var hidden: String = "512,512"

    @Option(help: "Dataset: fashion-mnist (IDX files) or synthetic (generated, same shapes).")
    public var dataset: DatasetName = .fashionMNIST

    @Option(help: "Directory holding the Fashion-MNIST IDX files (.gz or plain).")
    public var dataDir: String = FashionMNIST.defaultDirectory

    @Option(parsing: .unconditional, help: "Passes over the training set.")
    public var epochs: Int = 1

    @Option(parsing: .unconditional, help: "Stop after this many optimizer steps (default: run all epochs).")
    public var steps: Int?

    @Option(parsing: .unconditional, help: "Learning rate.")
    public var lr: Float = 0.05

    @Option(parsing: .unconditional, help: "SGD momentum (0 for plain SGD).")
    public var momentum: Float = 0.9

    @Option(parsing: .unconditional, help: "Seed for initialisation, shuffling and synthetic data.")
    public var seed: UInt64 = 42

    @Option(help: ArgumentHelp("Write the trained model here (safetensors).", valueName: "file"))
    public var saveModel: String?

    @Option(help: ArgumentHelp("Write run metrics here (JSON).", valueName: "file"))
    public var metricsJson: String?

    @Option(parsing: .unconditional, help: "Print progress every this many steps.")
    public var logEvery: Int = 50

    @Option(parsing: .unconditional, help: "OpenBLAS threads per rank (default: the node's cores divided by its ranks).")
    public var threads: Int?

    public init() {}

    public func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1 (got \(epochs))") }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1 (got \(steps))") }
        guard lr.isFinite, lr > 0 else { throw ValidationError("--lr must be a positive number (got \(lr))") }
        guard momentum.isFinite, momentum >= 0, momentum < 1 else {
            throw ValidationError("--momentum must be in [0, 1) (got \(momentum))")
        }
        guard logEvery >= 1 else { throw ValidationError("--log-every must be at least 1 (got \(logEvery))") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1 (got \(threads))") }
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

