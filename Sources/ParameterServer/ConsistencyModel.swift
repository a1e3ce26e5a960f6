/// When a worker may read the parameters: the three consistency models of the
/// parameter-server literature, as one rule on clocks.
///
/// A worker's clock c is the number of iterations it has finished; the update it
/// pushed in iteration t carries timestamp t. Before computing its next iteration a
/// worker reads (pulls) the parameters, and a server answers that read only when
///
///     slowest clock >= c - S
///
/// so the read includes every update with timestamp <= c - S - 1 from every worker,
/// and (as a server applies a worker's push before answering its pull) all of the
/// reader's own updates (Ho et al., NIPS 2013; Petuum Bösen's SSP). S = 0 is BSP: a
/// read at clock c waits until every worker has pushed its update c - 1. ASP has no
/// bound: every read is answered at once. The staleness a read saw is c minus the
/// slowest clock when it was answered, at most S.
public enum ConsistencyModel: Sendable, Equatable, CustomStringConvertible {
    case bsp
    case ssp(staleness: Int)
    case asp

    /// S, or nil for no bound.
    public var bound: Int? {
        switch self {
        case .bsp: 0
        case .ssp(let staleness): staleness
        case .asp: nil
        }
    }

    /// Whether a read at `clock` may be answered while the slowest worker is at `slowest`.
    public func admitsRead(at clock: Int, slowest: Int) -> Bool {
        bound.map { slowest >= clock - $0 } ?? true
    }

    public var name: String {
        switch self {
        case .bsp: "bsp"
        case .ssp: "ssp"
        case .asp: "asp"
        }
    }

    public var description: String {
        switch self {
        case .bsp: "bsp"
        case .ssp(let staleness): "ssp, staleness \(staleness)"
        case .asp: "asp"
        }
    }
}

/// The workers' clocks as one server has seen them.
public struct ClockTable: Sendable, Equatable {
    public private(set) var clocks: [Int]

    public init(workers: Int, startingAt clock: Int = 0) {
        clocks = Array(repeating: clock, count: workers)
    }

    public var slowest: Int { clocks.min() ?? 0 }
    public var fastest: Int { clocks.max() ?? 0 }

    /// Worker `w` finished an iteration (its push arrived).
    public mutating func tick(_ w: Int) { clocks[w] += 1 }

    /// How far worker `w`'s read runs ahead of the slowest worker.
    public func staleness(of w: Int) -> Int { clocks[w] - slowest }
}

/// Reads counted by the staleness they saw.
public struct StalenessHistogram: Sendable, Equatable {
    /// Index: staleness.
    public private(set) var counts: [Int] = []

    public init(counts: [Int] = []) { self.counts = counts }

    public var maximum: Int { counts.lastIndex { $0 > 0 } ?? 0 }

    public mutating func record(_ staleness: Int) {
        if counts.count <= staleness { counts += Array(repeating: 0, count: staleness + 1 - counts.count) }
        counts[staleness] += 1
    }
}
