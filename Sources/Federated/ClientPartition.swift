import Foundation
import Collectives
import NeuralNet

/// How the training set is divided among simulated clients.
public enum PartitionScheme: Sendable, Equatable, CustomStringConvertible {
    /// Equal shares of a seeded shuffle (sizes differ by at most one).
    case iid
    /// McMahan et al.'s pathological split: the set sorted by label, cut into
    /// `perClient` x K shards of equal size, `perClient` shards per client.
    case shards(perClient: Int)
    /// Label skew: per class, the clients' shares drawn from Dir(alpha) (NIID-Bench's
    /// convention, see `ClientPartition`).
    case dirichlet(alpha: Double)
    /// `perClient` distinct labels per client, each label's samples split evenly among
    /// the clients that hold it (NIID-Bench's #C = k).
    case labels(perClient: Int)

    public var description: String {
        switch self {
        case .iid: "iid"
        case .shards(let s): "shards:\(s)"
        case .dirichlet(let alpha): "dirichlet:\(alpha)"
        case .labels(let l): "labels:\(l)"
        }
    }
}

/// A partition that cannot be made from this data.
public struct ClientPartitionError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Which training samples each client holds: seeded, the same on every rank, every
/// sample held by at most one client (by exactly one, except for `labels:L` when some
/// label is held by no client, which needs fewer clients than classes).
///
/// Dirichlet follows NIID-Bench (Li et al., 2022) so its figures compare: per class,
/// proportions p ~ Dir(alpha) over the K clients, with the share of a client that
/// already holds N/K samples set to 0 before renormalising (this balances sizes); the
/// class's shuffled samples are cut at the cumulative proportions; the draw is
/// repeated until every client holds at least `minimumSize` samples.
public struct ClientPartition: Sendable, Equatable {
    /// Sample indices of each client, in ascending order.
    public let clients: [[Int]]

    public init(labels: [UInt8], classes: Int, clients count: Int, scheme: PartitionScheme, seed: UInt64,
                minimumSize: Int = 10) throws {
        guard count >= 1 else { throw ClientPartitionError("there must be at least one client (got \(count))") }
        guard count <= labels.count else {
            throw ClientPartitionError("\(count) clients need at least \(count) training samples; the set has \(labels.count)")
        }
        var generator = SeededGenerator(seed: seed, stream: 0xFED0_0001)
        var clients: [[Int]]
        switch scheme {
        case .iid:
            let order = Array(0..<labels.count).shuffled(using: &generator)
            let blocks = Chunking(count: order.count, parts: count)
            clients = (0..<count).map { Array(order[blocks.range($0)]) }
        case .shards(let perClient):
            clients = try Self.shards(labels: labels, clients: count, perClient: perClient, generator: &generator)
        case .dirichlet(let alpha):
            clients = try Self.dirichlet(labels: labels, classes: classes, clients: count, alpha: alpha,
                                         minimumSize: minimumSize, generator: &generator)
        case .labels(let perClient):
            clients = try Self.labelSets(labels: labels, classes: classes, clients: count, perClient: perClient,
                                         generator: &generator)
        }
        self.clients = clients.map { $0.sorted() }
    }

    public var count: Int { clients.count }
    public var sizes: [Int] { clients.map(\.count) }

    /// Per client, how many of its samples have each label.
    public func histogram(labels: [UInt8], classes: Int) -> [[Int]] {
        clients.map { indices in
            var counts = [Int](repeating: 0, count: classes)
            for i in indices { counts[Int(labels[i])] += 1 }
            return counts
        }
    }

    // MARK: The schemes

    static func shards(labels: [UInt8], clients: Int, perClient: Int, generator: inout SeededGenerator) throws -> [[Int]] {
        guard perClient >= 1 else { throw ClientPartitionError("shards:S needs S >= 1 (got \(perClient))") }
        let shardCount = clients * perClient
        guard shardCount <= labels.count else {
            throw ClientPartitionError("shards:\(perClient) for \(clients) clients cuts \(shardCount) shards from \(labels.count) samples")
        }
        // Sorted by label, ties by index: a shard is a run of one label where sizes allow.
        let sorted = Array(0..<labels.count).sorted { (labels[$0], $0) < (labels[$1], $1) }
        let cuts = Chunking(count: sorted.count, parts: shardCount)
        let dealt = Array(0..<shardCount).shuffled(using: &generator)
        return (0..<clients).map { client in
            dealt[(client * perClient)..<((client + 1) * perClient)].flatMap { sorted[cuts.range($0)] }
        }
    }

    static func dirichlet(labels: [UInt8], classes: Int, clients: Int, alpha: Double, minimumSize: Int,
                          generator: inout SeededGenerator) throws -> [[Int]] {
        guard alpha.isFinite, alpha > 0 else { throw ClientPartitionError("dirichlet:ALPHA needs ALPHA > 0 (got \(alpha))") }
        let minimum = min(minimumSize, labels.count / clients)
        let byClass = (0..<classes).map { c in labels.indices.filter { Int(labels[$0]) == c } }
        let fairShare = Double(labels.count) / Double(clients)
        for _ in 0..<1_000 {
            var held = [[Int]](repeating: [], count: clients)
            for members in byClass where !members.isEmpty {
                let shuffled = members.shuffled(using: &generator)
                var shares = (0..<clients).map { k in
                    Double(held[k].count) < fairShare ? Gamma.sample(shape: alpha, using: &generator) : 0
                }
                let total = shares.reduce(0, +)
                if total <= 0 { shares = [Double](repeating: 1, count: clients) }
                let sum = shares.reduce(0, +)
                var start = 0, cumulative = 0.0
                for k in 0..<clients {
                    cumulative += shares[k] / sum
                    let end = k == clients - 1 ? shuffled.count : min(shuffled.count, Int(cumulative * Double(shuffled.count)))
                    if end > start { held[k] += shuffled[start..<end] }
                    start = max(start, end)
                }
            }
            if held.allSatisfy({ $0.count >= minimum }) { return held }
        }
        throw ClientPartitionError("dirichlet:\(alpha) gave some of the \(clients) clients fewer than \(minimum) samples in 1000 draws; "
                             + "use fewer clients or a larger ALPHA")
    }

    static func labelSets(labels: [UInt8], classes: Int, clients: Int, perClient: Int,
                          generator: inout SeededGenerator) throws -> [[Int]] {
        guard (1...classes).contains(perClient) else {
            throw ClientPartitionError("labels:L needs L between 1 and the \(classes) classes (got \(perClient))")
        }
        // Client k holds label k mod classes and perClient - 1 others drawn at random.
        var holds = [[Int]]()
        var holders = [Int](repeating: 0, count: classes)
        for k in 0..<clients {
            var mine = [k % classes]
            while mine.count < perClient {
                let label = Int(generator.next() % UInt64(classes))
                if !mine.contains(label) { mine.append(label) }
            }
            for label in mine { holders[label] += 1 }
            holds.append(mine)
        }
        var held = [[Int]](repeating: [], count: clients)
        for label in 0..<classes where holders[label] > 0 {
            let members = labels.indices.filter { Int(labels[$0]) == label }.shuffled(using: &generator)
            let parts = Chunking(count: members.count, parts: holders[label])
            var part = 0
            for k in 0..<clients where holds[k].contains(label) {
                held[k] += members[parts.range(part)]
                part += 1
            }
        }
        if let empty = held.firstIndex(where: \.isEmpty) {
            throw ClientPartitionError("labels:\(perClient) leaves client \(empty) without samples: use fewer clients")
        }
        return held
    }
}

/// Gamma(shape, 1) draws (Marsaglia and Tsang, 2000), for Dirichlet proportions: a
/// Dirichlet(alpha) vector is independent Gamma(alpha) draws over their sum.
enum Gamma {
    static func sample(shape: Double, using generator: inout SeededGenerator) -> Double {
        if shape < 1 {
            // Gamma(a) = Gamma(a + 1) * U^(1/a).
            let u = max(unit(&generator), 1e-300)
            return sample(shape: shape + 1, using: &generator) * Foundation.pow(u, 1 / shape)
        }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            let x = Double(generator.nextGaussian())
            let v0 = 1 + c * x
            if v0 <= 0 { continue }
            let v = v0 * v0 * v0, u = unit(&generator)
            if Foundation.log(max(u, 1e-300)) < 0.5 * x * x + d - d * v + d * Foundation.log(v) { return d * v }
        }
    }

    static func unit(_ generator: inout SeededGenerator) -> Double {
        Double(generator.next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }
}
