import Collectives
import Foundation

/// `allreduce-bench --calibrate FILE`: the fastest algorithm per measured size becomes
/// the decision table's rule for this layout. The built-in rules' choice is kept unless
/// another algorithm is faster by more than `margin`: a table should change `auto` only
/// where the difference is measured, not where two algorithms tie within noise.
struct Calibration {
    static let margin = 0.05

    let layout: NodeLayout
    let sharedMemory: Bool

    /// The algorithms a calibration measures on this layout.
    var candidates: [AllreduceAlgorithm] {
        var all: [AllreduceAlgorithm] = [.ring, .recursiveDoubling, .mpi]
        if sharedMemory && layout.nodeCount == 1 { all.insert(.sharedMemory, at: 0) }
        if layout.nodeCount > 1 && layout.largestNode > 1 { all.insert(.hierarchical, at: 0) }
        return all
    }

    /// The winner at each size of `rows` (the candidates' measurements).
    func winners(_ rows: [BenchmarkRow], ranks: Int) -> [(bytes: Int, algorithm: AllreduceAlgorithm)] {
        let sizes = Array(Set(rows.map(\.bytes))).sorted()
        return sizes.map { bytes in
            let measured = rows.filter { $0.bytes == bytes && $0.correct }
                .compactMap { row in AllreduceAlgorithm(rawValue: row.algorithm).map { ($0, row.timeMax) } }
            let builtIn = AllreducePolicy.choose(bytes: bytes, ranks: ranks, nodes: layout.nodeCount,
                                                 largestNode: layout.largestNode, sharedMemory: sharedMemory)
            guard let fastest = measured.min(by: { $0.1 < $1.1 }) else { return (bytes, builtIn) }
            if let kept = measured.first(where: { $0.0 == builtIn }), kept.1 <= fastest.1 * (1 + Self.margin) {
                return (bytes, builtIn)
            }
            return (bytes, fastest.0)
        }
    }

    /// The table to write: `existing`'s rules for other layouts and this layout's new ones.
    func table(_ rows: [BenchmarkRow], ranks: Int, existing: AllreduceDecisionTable?, host: String) -> AllreduceDecisionTable {
        let rules = AllreduceDecisionTable.rules(ranks: ranks, nodes: layout.nodeCount, largestNode: layout.largestNode,
                                                 winners: winners(rows, ranks: ranks))
        let stamp = ISO8601DateFormatter().string(from: Date())
        let title = "# Chorus all-reduce decision table (allreduce-bench --calibrate; docs/collectives.md)."
        let measured = "# \(ranks) ranks on \(layout.nodeCount) node(s): measured on \(host) at \(stamp)"
        let earlier = (existing?.comments ?? []).filter { $0 != title && !$0.hasPrefix("# \(ranks) ranks on \(layout.nodeCount) node(s):") }
        let comments = [title] + earlier + [measured]
        return (existing ?? AllreduceDecisionTable(rules: [])).replacing(ranks: ranks, nodes: layout.nodeCount,
                                                                          largestNode: layout.largestNode, with: rules,
                                                                          comments: comments)
    }
}
