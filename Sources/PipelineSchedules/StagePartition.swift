/// Which layers each stage runs: S contiguous ranges covering the model's layers.
public struct StagePartition: Equatable, Sendable {
    /// `ranges[s]`: the layer indices of stage s.
    public let ranges: [Range<Int>]

    /// Splits `costs.count` layers into `stages` contiguous, non-empty stages so the
    /// most expensive stage is as cheap as possible (exact, by dynamic programming over
    /// split points: O(S·n²), trivial for models of tens of layers). A pipeline runs at
    /// the pace of its slowest stage, so the maximum is what to minimise.
    public init(balancing costs: [Double], stages: Int) throws {
        let n = costs.count
        guard stages >= 1 else { throw PartitionError.noStages }
        guard stages <= n else { throw PartitionError.tooFewLayers(stages: stages, layers: n) }
        var prefix = [0.0]
        for c in costs { prefix.append(prefix.last! + c) }
        // best[k][j]: the smallest possible maximum stage cost for layers 0..<j in k stages.
        var best = [[Double]](repeating: [Double](repeating: .infinity, count: n + 1), count: stages + 1)
        var cut = [[Int]](repeating: [Int](repeating: 0, count: n + 1), count: stages + 1)
        best[0][0] = 0
        for k in 1...stages {
            for j in k...n {
                for i in (k - 1)..<j where best[k - 1][i] < .infinity {
                    let worst = max(best[k - 1][i], prefix[j] - prefix[i])
                    if worst < best[k][j] {
                        best[k][j] = worst
                        cut[k][j] = i
                    }
                }
            }
        }
        var bounds = [n]
        var j = n
        for k in stride(from: stages, to: 0, by: -1) {
            j = cut[k][j]
            bounds.insert(j, at: 0)
        }
        ranges = (0..<stages).map { bounds[$0]..<bounds[$0 + 1] }
    }

    /// Stages starting at the given layer indices (starts 3 and 7: stage 0 is layers
    /// 0..<3, stage 1 is 3..<7, stage 2 the rest).
    public init(starts: [Int], layerCount n: Int) throws {
        guard zip([0] + starts, starts + [n]).allSatisfy({ $0 < $1 }) else {
            throw PartitionError.invalidStarts(starts, layers: n)
        }
        let bounds = [0] + starts + [n]
        ranges = (0..<(bounds.count - 1)).map { bounds[$0]..<bounds[$0 + 1] }
    }

    public var stages: Int { ranges.count }
}

/// A partition that cannot be made.
public enum PartitionError: Error, CustomStringConvertible, Equatable {
    case noStages
    case tooFewLayers(stages: Int, layers: Int)
    /// Stage starts that are not increasing layer indices inside the model.
    case invalidStarts([Int], layers: Int)

    public var description: String {
        switch self {
        case .noStages: "a pipeline needs at least one stage"
        case .tooFewLayers(let stages, let layers): "\(stages) stages need at least \(stages) layers; the model has \(layers)"
        case .invalidStarts(let starts, let layers): "the stage starts \(Self.list(starts)) \(Self.rule(layers))"
        }
    }

    /// What valid starts are, for messages in any terms.
    public static func rule(_ layers: Int) -> String {
        "must be increasing layer indices in 1...\(layers - 1) (the model has \(layers) layers)"
    }

    public static func list(_ starts: [Int]) -> String { starts.map(String.init).joined(separator: ",") }
}
