import Foundation
import NeuralNet

/// The configurations a search tries: the Cartesian product of grid dimensions, or
/// `samples` random draws over distributions (scikit-learn's `GridSearchCV` and
/// `RandomizedSearchCV`, Ray Tune's `grid_search` and sampling functions).
///
/// Values are text: the trainer that receives them parses and validates them, so a
/// space can name any setting the trainer has. The generated trials are a function
/// of the space and the seed alone: every rank and every resumed run makes the same.
public struct SearchSpace: Sendable, Equatable {
    /// Grid dimensions, in the order given; the first varies slowest.
    public var grid: [GridDimension] = []
    /// Random draws (nil: a pure grid). Each draw also takes one grid point at
    /// random when there are grid dimensions.
    public var samples: Int?
    public var distributions: [Distribution] = []

    public init(grid: [GridDimension] = [], samples: Int? = nil, distributions: [Distribution] = []) {
        self.grid = grid
        self.samples = samples
        self.distributions = distributions
    }

    /// Every name the space sets, in order (grid first).
    public var names: [String] { grid.map(\.name) + distributions.map(\.name) }

    /// The configurations, in generation order (trial ids follow it).
    public func configurations(seed: UInt64) throws -> [[Setting]] {
        try validate()
        let points = gridPoints()
        guard let samples else { return points }
        var generator = SeededGenerator(seed: seed, stream: Self.samplingStream)
        return (0..<samples).map { _ in
            let point = grid.isEmpty ? [] : points[Int(generator.next() % UInt64(points.count))]
            return point + distributions.map { Setting($0.name, $0.draw(&generator)) }
        }
    }

    /// The Cartesian product of the grid, the last dimension varying fastest.
    func gridPoints() -> [[Setting]] {
        grid.reduce([[]]) { points, dimension in
            points.flatMap { point in dimension.values.map { point + [Setting(dimension.name, $0)] } }
        }
    }

    public func validate() throws {
        var seen = Set<String>()
        for name in names where !seen.insert(name).inserted { throw SearchSpaceError.repeatedName(name) }
        for dimension in grid where dimension.values.isEmpty { throw SearchSpaceError.emptyGrid(dimension.name) }
        if let samples {
            guard samples >= 1 else { throw SearchSpaceError.noSamples(samples) }
        } else if !distributions.isEmpty {
            throw SearchSpaceError.distributionsWithoutSamples(distributions.map(\.name))
        }
        if grid.isEmpty && distributions.isEmpty { throw SearchSpaceError.empty }
        for distribution in distributions { try distribution.validate() }
    }

    /// The generator stream of random draws (independent of the trainer's own from the same seed).
    static let samplingStream: UInt64 = 0x7475_6E65  // "tune"
}

/// `--grid lr=0.01,0.1`: one name and the values it takes.
public struct GridDimension: Sendable, Equatable {
    public let name: String
    public let values: [String]

    public init(name: String, values: [String]) {
        self.name = name
        self.values = values
    }
}

/// A distribution a random search draws a setting from.
public struct Distribution: Sendable, Equatable {
    public enum Shape: Sendable, Equatable {
        /// Uniform on [low, high]; with `integer`, uniform over the integers in it.
        case uniform(low: Double, high: Double, integer: Bool)
        /// exp of uniform on [log low, log high] (learning rates, weight decay).
        case logUniform(low: Double, high: Double, integer: Bool)
        /// One of the values, equally likely.
        case choice([String])
    }

    public let name: String
    public let shape: Shape

    public init(name: String, shape: Shape) {
        self.name = name
        self.shape = shape
    }

    func validate() throws {
        switch shape {
        case .uniform(let low, let high, _):
            guard low.isFinite, high.isFinite, low <= high else { throw SearchSpaceError.badRange(name, low, high) }
        case .logUniform(let low, let high, _):
            guard low.isFinite, high.isFinite, low > 0, low <= high else { throw SearchSpaceError.badLogRange(name, low, high) }
        case .choice(let values):
            if values.isEmpty { throw SearchSpaceError.emptyGrid(name) }
        }
    }

    /// One draw, as text. Reals are drawn in double precision and written as the
    /// shortest text that reads back as the same single-precision number (the
    /// trainers' settings are Float), so the results file names exactly what ran.
    func draw(_ generator: inout SeededGenerator) -> String {
        let unit = Double(generator.next() >> 11) * (1.0 / 9_007_199_254_740_992.0)  // [0, 1) with 53 bits
        switch shape {
        case .uniform(let low, let high, let integer):
            if integer {
                let lowest = Int(low.rounded(.up)), highest = Int(high.rounded(.down))
                return "\(lowest + Int(unit * Double(highest - lowest + 1)))"
            }
            return "\(Float(low + unit * (high - low)))"
        case .logUniform(let low, let high, let integer):
            let value = Foundation.exp(Foundation.log(low) + unit * (Foundation.log(high) - Foundation.log(low)))
            return integer ? "\(Int(min(max(value.rounded(), low.rounded(.up)), high.rounded(.down))))" : "\(Float(value))"
        case .choice(let values):
            return values[Int(unit * Double(values.count))]
        }
    }
}

/// A search space that cannot be searched.
public enum SearchSpaceError: Error, CustomStringConvertible, Equatable {
    case empty
    case emptyGrid(String)
    case repeatedName(String)
    case noSamples(Int)
    case distributionsWithoutSamples([String])
    case badRange(String, Double, Double)
    case badLogRange(String, Double, Double)

    public var description: String {
        switch self {
        case .empty: "the search space is empty: give at least one grid dimension or distribution"
        case .emptyGrid(let name): "\(name) has no values to try"
        case .repeatedName(let name): "\(name) is given more than once"
        case .noSamples(let n): "a random search needs at least 1 sample (got \(n))"
        case .distributionsWithoutSamples(let names):
            "\(names.joined(separator: ", ")) \(names.count == 1 ? "is a distribution" : "are distributions"), which need a number of random samples"
        case .badRange(let name, let low, let high): "\(name)'s range \(low):\(high) must be finite numbers with low <= high"
        case .badLogRange(let name, let low, let high): "\(name)'s log-uniform range \(low):\(high) must be positive with low <= high"
        }
    }
}
