import Datasets

/// Which data to train on.
public enum DatasetChoice: Sendable {
    case fashionMNIST(directory: String)
    case synthetic
    /// Splits the caller has already loaded (a library user's own data).
    case provided(DatasetSplits)

    /// Loads the splits (on every rank: each reads its own copy).
    public func load(seed: UInt64) throws -> DatasetSplits {
        switch self {
        case .fashionMNIST(let directory): try FashionMNIST.load(directory: directory)
        case .synthetic: try SyntheticImages.make(seed: seed)
        case .provided(let splits): splits
        }
    }
}

extension DatasetChoice {
    /// The dataset's name in messages.
    public var name: String {
        switch self {
        case .fashionMNIST: "Fashion-MNIST"
        case .synthetic: "the synthetic dataset"
        case .provided(let splits): splits.name
        }
    }
}

/// The training data's images do not fit the model.
public struct InputShapeMismatch: Error, CustomStringConvertible {
    public let dataset: String
    public let imageShape: [Int]
    public let modelInput: [Int]

    public init(dataset: String, imageShape: [Int], modelInput: [Int]) {
        self.dataset = dataset
        self.imageShape = imageShape
        self.modelInput = modelInput
    }

    public var description: String { "\(dataset) images are \(imageShape), the model expects \(modelInput)" }
}
