import Datasets
import NeuralNet

/// How a trial is scored without touching the test set: on held-out parts of the
/// training set.
public enum ValidationScheme: Sendable, Equatable {
    /// One seeded, stratified split: `fraction` of each class is held out.
    case holdout(fraction: Double)
    /// Stratified K-fold cross-validation (scikit-learn's `StratifiedKFold` with
    /// shuffling): K disjoint folds covering the training set, each holding every
    /// class in the same proportion up to one sample; fold k is scored by a model
    /// trained on the other K - 1.
    case crossValidation(folds: Int)

    /// The train/validation index pairs, the same on every rank for a seed.
    ///
    /// Each class's indices are shuffled with the seed and dealt round-robin: fold k
    /// takes positions k, k + K, k + 2K, ... of every class. The dealing continues
    /// across classes (class c starts where class c - 1 stopped), so fold sizes differ
    /// by at most one overall, not one per class.
    public func splits(labels: [UInt8], classes: Int, seed: UInt64) throws -> [ValidationSplit] {
        let byClass = (0..<classes).map { c in labels.indices.filter { Int(labels[$0]) == c } }
        var generator = SeededGenerator(seed: seed, stream: Self.foldStream)
        let shuffled = byClass.map { $0.shuffled(using: &generator) }
        switch self {
        case .crossValidation(let k):
            guard k >= 2 else { throw ValidationError.tooFewFolds(k) }
            guard labels.count >= k else { throw ValidationError.tooFewSamples(labels.count, folds: k) }
            var folds = [[Int]](repeating: [], count: k)
            var next = 0
            for members in shuffled {
                for index in members {
                    folds[next].append(index)
                    next = (next + 1) % k
                }
            }
            return (0..<k).map { held in
                ValidationSplit(train: folds.indices.filter { $0 != held }.flatMap { folds[$0] }.sorted(),
                                validation: folds[held].sorted())
            }
        case .holdout(let fraction):
            guard fraction > 0, fraction < 1 else { throw ValidationError.badFraction(fraction) }
            var validation: [Int] = [], train: [Int] = []
            for members in shuffled {
                let held = Int((Double(members.count) * fraction).rounded())
                validation += members.prefix(held)
                train += members.dropFirst(held)
            }
            guard !validation.isEmpty, !train.isEmpty else { throw ValidationError.emptyHoldout(fraction, labels.count) }
            return [ValidationSplit(train: train.sorted(), validation: validation.sorted())]
        }
    }

    public var description: String {
        switch self {
        case .holdout(let fraction): "a stratified \(Int((fraction * 100).rounded()))% validation split"
        case .crossValidation(let k): "stratified \(k)-fold cross-validation"
        }
    }

    static let foldStream: UInt64 = 0x666F_6C64  // "fold"
}

/// The training samples of one fold and the ones it is scored on (indices into the
/// training set, in increasing order).
public struct ValidationSplit: Sendable, Equatable {
    public let train: [Int]
    public let validation: [Int]

    /// The data a trial trains and is scored on: the split's training samples as
    /// training data and its validation samples in the place of the test set.
    public func data(from training: LabeledImages, name: String) throws -> DatasetSplits {
        DatasetSplits(name: name, train: try training.subset(train), test: try training.subset(validation))
    }
}

public enum ValidationError: Error, CustomStringConvertible, Equatable {
    case tooFewFolds(Int)
    case tooFewSamples(Int, folds: Int)
    case badFraction(Double)
    case emptyHoldout(Double, Int)

    public var description: String {
        switch self {
        case .tooFewFolds(let k): "cross-validation needs at least 2 folds (got \(k))"
        case .tooFewSamples(let n, let k): "\(n) training samples cannot make \(k) folds"
        case .badFraction(let f): "the validation fraction must be in (0, 1) (got \(f))"
        case .emptyHoldout(let f, let n): "a validation fraction of \(f) of \(n) samples leaves one side empty"
        }
    }
}
