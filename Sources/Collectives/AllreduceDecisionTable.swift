import Foundation

/// A measured choice of all-reduce algorithm per message size, for the node layouts
/// it was measured on: what `auto` runs before its built-in rules (in the spirit of
/// Open MPI's dynamic rules file and NCCL's tuner plugin). A calibration (the
/// all-reduce benchmark's) writes one for the machine it runs on.
///
/// The file is text, one rule per line, `#` comments:
///
///     ranks,nodes,largest_node,max_bytes,algorithm
///     2,1,2,131072,recursive-doubling
///     2,1,2,16777216,mpi
///     2,1,2,inf,shared-memory
///
/// A rule applies to a communicator of `ranks` ranks on `nodes` nodes whose largest
/// holds `largest_node` of them, for messages of at most `max_bytes` bytes (`inf`: any
/// size); the first rule that applies wins. A layout or size no rule covers falls back
/// to `AllreducePolicy.rules`; a calibration ends its last rule at the largest size it
/// measured, so it speaks only for sizes it saw. Every rank must hold the same rules: `digest` is what
/// the ranks compare before the first all-reduce.
public struct AllreduceDecisionTable: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        public let ranks: Int
        public let nodes: Int
        public let largestNode: Int
        /// nil: any size.
        public let maxBytes: Int?
        public let algorithm: AllreduceAlgorithm

        public init(ranks: Int, nodes: Int, largestNode: Int, maxBytes: Int?, algorithm: AllreduceAlgorithm) {
            self.ranks = ranks
            self.nodes = nodes
            self.largestNode = largestNode
            self.maxBytes = maxBytes
            self.algorithm = algorithm
        }

        func applies(_ situation: AllreducePolicy.Situation) -> Bool {
            ranks == situation.ranks && nodes == situation.nodes && largestNode == situation.largestNode
                && situation.bytes <= (maxBytes ?? Int.max)
        }

        var line: String {
            "\(ranks),\(nodes),\(largestNode),\(maxBytes.map(String.init) ?? "inf"),\(algorithm.rawValue)"
        }
    }

    public static let header = "ranks,nodes,largest_node,max_bytes,algorithm"

    /// The configuration field under which ranks compare their tables.
    public static let agreementField = "the all-reduce decision table"

    /// What the ranks compare: the rule count and digest, or "none".
    public static func summary(_ table: AllreduceDecisionTable?) -> String {
        table.map { "\($0.rules.count) rules, digest \($0.digest)" } ?? "none"
    }

    public let rules: [Rule]
    /// Comment lines kept with the rules (where and when they were measured).
    public let comments: [String]

    public init(rules: [Rule], comments: [String] = []) {
        self.rules = rules
        self.comments = comments
    }

    /// Parses a table; the error names the line.
    public init(text: String) throws {
        var rules = [Rule](), comments = [String]()
        // Lines by any newline, "\r\n" included (one Character in Swift, so not "\n").
        for (index, raw) in text.components(separatedBy: .newlines).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line == Self.header { continue }
            if line.hasPrefix("#") { comments.append(line); continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            func bad(_ why: String) -> DecisionTableError { DecisionTableError(line: index + 1, text: line, problem: why) }
            guard fields.count == 5 else { throw bad("a rule has 5 fields: \(Self.header)") }
            guard let ranks = Int(fields[0]), ranks >= 1, let nodes = Int(fields[1]), nodes >= 1, nodes <= ranks,
                  let largest = Int(fields[2]), largest >= 1, largest + nodes - 1 <= ranks, largest * nodes >= ranks else {
                throw bad("ranks, nodes and largest_node must be whole numbers of a possible layout")
            }
            let maxBytes: Int?
            if fields[3] == "inf" { maxBytes = nil } else {
                guard let bytes = Int(fields[3]), bytes >= 0 else { throw bad("max_bytes must be a byte count or inf") }
                maxBytes = bytes
            }
            guard let algorithm = AllreduceAlgorithm(rawValue: fields[4]), algorithm != .auto else {
                throw bad("unknown algorithm '\(fields[4])' (one of "
                          + AllreduceAlgorithm.allCases.filter { $0 != .auto }.map(\.rawValue).joined(separator: ", ") + ")")
            }
            rules.append(Rule(ranks: ranks, nodes: nodes, largestNode: largest, maxBytes: maxBytes, algorithm: algorithm))
        }
        guard !rules.isEmpty else { throw DecisionTableError(line: 0, text: "", problem: "the table has no rules") }
        self.init(rules: rules, comments: comments)
    }

    public var text: String {
        (comments + [Self.header] + rules.map(\.line)).joined(separator: "\n") + "\n"
    }

    /// The algorithm the table gives for this situation, if a rule covers it.
    public func choose(_ situation: AllreducePolicy.Situation) -> AllreduceAlgorithm? {
        rules.first { $0.applies(situation) }?.algorithm
    }

    /// FNV-1a over the rules (not the comments): two calibrations that chose alike agree.
    public var digest: String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in rules.map(\.line).joined(separator: "\n").utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// `self` with its rules for `layout` replaced by `rules` (the other layouts' kept):
    /// calibrating at 2 ranks and then at 4 builds one table.
    public func replacing(ranks: Int, nodes: Int, largestNode: Int, with new: [Rule], comments: [String]) -> AllreduceDecisionTable {
        let kept = rules.filter { !($0.ranks == ranks && $0.nodes == nodes && $0.largestNode == largestNode) }
        return AllreduceDecisionTable(rules: kept + new, comments: comments)
    }

    /// Rules from measured winners: one per run of sizes won by the same algorithm, the
    /// last ending at the largest size measured. `winners` are (bytes, algorithm) in
    /// ascending size.
    public static func rules(ranks: Int, nodes: Int, largestNode: Int, winners: [(bytes: Int, algorithm: AllreduceAlgorithm)]) -> [Rule] {
        var rules = [Rule]()
        for (index, winner) in winners.enumerated() {
            let next = index + 1 < winners.count ? winners[index + 1] : nil
            guard next?.algorithm != winner.algorithm else { continue }
            // Between two measured sizes won by different algorithms, the boundary is their
            // geometric mean: the ladder is geometric, and neither side was measured there.
            let limit = next.map { Int((Double(winner.bytes) * Double($0.bytes)).squareRoot()) } ?? winner.bytes
            rules.append(Rule(ranks: ranks, nodes: nodes, largestNode: largestNode, maxBytes: limit, algorithm: winner.algorithm))
        }
        return rules
    }
}

public struct DecisionTableError: Error, CustomStringConvertible {
    public let line: Int
    public let text: String
    public let problem: String
    public var description: String {
        line == 0 ? "all-reduce decision table: \(problem)" : "all-reduce decision table, line \(line) ('\(text)'): \(problem)"
    }
}
