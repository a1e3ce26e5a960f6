import NeuralNet

/// The model's flat parameter buffer split into one contiguous range per server,
/// balanced by bytes: every rank computes the same split from the slots alone.
///
/// Boundary i sits at the even share i·N/K, moved to the nearest tensor boundary when
/// one lies within a tenth of a share (a server then holds whole tensors, and a
/// worker's push to it is the tensors' gradients as they are); otherwise the cut falls
/// inside a tensor and each server holds a contiguous piece of it. Each share is
/// therefore within a fifth of the even share (two shares may differ by two fifths).
/// O(K x tensors): each cut looks at every tensor boundary.
public struct ServerPartition: Sendable, Equatable {
    /// Server k's range of the flat buffer; together they tile it in order.
    public let ranges: [Range<Int>]

    public init(slots: [ParameterSlot], servers: Int) throws {
        let total = slots.reduce(0) { $0 + $1.count }
        guard servers >= 1, total >= servers else { throw TooFewParameters(parameters: total, servers: servers) }
        let boundaries = slots.map(\.offset) + [total]
        let tolerance = total / (10 * servers)
        var cuts = [0]
        for i in 1..<servers {
            let even = Int((Double(i) * Double(total) / Double(servers)).rounded())
            let nearest = boundaries.min { abs($0 - even) < abs($1 - even) } ?? even
            // Never empty, never out of order: each server keeps at least one value.
            let cut = abs(nearest - even) <= tolerance ? nearest : even
            cuts.append(min(max(cut, cuts.last! + 1), total - (servers - i)))
        }
        cuts.append(total)
        ranges = (0..<servers).map { cuts[$0]..<cuts[$0 + 1] }
    }

    public var servers: Int { ranges.count }

    /// The tensors (or pieces of them) server `k` holds, laid out from 0 in its own
    /// buffer: a whole tensor keeps its name and shape; a piece is named
    /// `name[a..<b]` by its element range within the tensor and is one-dimensional.
    public func pieces(of k: Int, slots: [ParameterSlot]) -> [ParameterSlot] {
        let range = ranges[k]
        return slots.compactMap { slot in
            let part = slot.range.clamped(to: range)
            guard !part.isEmpty else { return nil }
            let whole = part == slot.range
            let inner = (part.lowerBound - slot.offset)..<(part.upperBound - slot.offset)
            return ParameterSlot(name: whole ? slot.name : "\(slot.name)[\(inner.lowerBound)..<\(inner.upperBound)]",
                                 shape: whole ? slot.shape : [part.count], offset: part.lowerBound - range.lowerBound,
                                 layerIndex: slot.layerIndex)
        }
    }

    /// For logs and the checkpoint layout: each server's share.
    public var description: String { ranges.map { "\($0.lowerBound)..<\($0.upperBound)" }.joined(separator: " ") }
}

/// More servers than parameters: some server would hold nothing.
public struct TooFewParameters: Error, CustomStringConvertible {
    public let parameters: Int
    public let servers: Int

    public var description: String {
        "the model has \(parameters) parameters, fewer than the \(servers) servers that would share them"
    }
}
