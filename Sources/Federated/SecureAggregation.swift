import Foundation
import NeuralNet

/// Secure aggregation, simulated: the masking of Bonawitz et al. (CCS 2017) without
/// its key agreement and secret sharing. Each reporting client encodes its weighted
/// update as fixed-point integers modulo 2^32 and adds, for every other client asked
/// in the round, a pseudo-random mask from the seed the pair shares: the lower client
/// of a pair adds it, the higher subtracts it, so in the sum of all clients' vectors
/// every mask cancels exactly and the server learns only the sum. A client asked but
/// not reporting leaves its pairs' masks uncancelled; the server removes them (in the
/// protocol, from seed shares the survivors reveal), so the sum stays exact.
///
/// In this simulation the pair seeds come from the run seed, the round and the pair,
/// so any rank can compute any mask: it shows the arithmetic and its cost, not the
/// secrecy (docs/federated.md says what it does and does not protect).
///
/// The encoded vector of client k is [n_k·Δ_k (P values), n_k, n_k·loss_k]. Fixed
/// point with f fractional bits, f the largest that keeps the round's worst-case sum
/// inside the signed 32-bit range: |n_k·Δ_k| ≤ n_k·bound per coordinate (updates are
/// clipped to ±bound), so the sum is at most N·bound with N the asked clients'
/// samples, and f = ⌊log2((2^31 − 1) / (N·bound))⌋. Rounding to nearest costs at most
/// 2^−(f+1) per client and coordinate: the average update is within
/// m·2^−(f+1) / n of the plain one (m reporting clients holding n samples).
public struct SecureAggregation: Sendable, Equatable {
    /// Per-coordinate bound on a client's update |w_k − w_global|; larger values are clipped.
    public var clipBound: Float
    /// The bound on a client's mean loss in the encoding.
    public static let lossBound = 64.0

    public init(clipBound: Float = 1) {
        self.clipBound = clipBound
    }

    /// The fixed-point scales of a round whose asked clients hold `samples` samples.
    public struct Scales: Sendable, Equatable {
        public let updateBits: Int
        public let lossBits: Int

        public var update: Double { Foundation.pow(2, Double(updateBits)) }
        public var loss: Double { Foundation.pow(2, Double(lossBits)) }
    }

    public func scales(askedSamples: Int) -> Scales {
        let limit = Double(Int32.max)
        func bits(_ worst: Double) -> Int { max(0, min(30, Int(Foundation.log2(limit / max(worst, 1)).rounded(.down)))) }
        return Scales(updateBits: bits(Double(askedSamples) * Double(clipBound)), lossBits: bits(Double(askedSamples) * Self.lossBound))
    }

    /// The bound on |secure average − plain average| per coordinate, when no update was clipped.
    public static func errorBound(reporting: Int, samples: Int, scales: Scales) -> Double {
        Double(reporting) * 0.5 / scales.update / Double(max(samples, 1))
    }

    /// Client `update`'s encoded vector, without masks; counts the clipped coordinates.
    func encode(_ update: ClientUpdate, scales: Scales, clipped: inout Int) -> [Int32] {
        let bound = clipBound, weight = Float(update.samples)
        var encoded = [Int32](repeating: 0, count: update.delta.count + 2)
        for (i, d) in update.delta.enumerated() {
            var value = d
            if !(abs(value) <= bound) {
                clipped += 1
                value = value.isNaN ? 0 : (value > 0 ? bound : -bound)
            }
            encoded[i] = Int32(truncatingIfNeeded: Int64((Double(value) * Double(weight) * scales.update).rounded()))
        }
        encoded[update.delta.count] = Int32(update.samples)
        let loss = min(max(update.meanLoss.isFinite ? update.meanLoss : Self.lossBound, 0), Self.lossBound)
        encoded[update.delta.count + 1] = Int32(truncatingIfNeeded: Int64((loss * Double(update.samples) * scales.loss).rounded()))
        return encoded
    }

    /// Adds client `client`'s masks with every other asked client to `vector`.
    static func mask(_ vector: inout [Int32], client: Int, asked: [Int], round: Int, seed: UInt64) {
        for other in asked where other != client {
            addMask(&vector, pair: (min(client, other), max(client, other)), sign: client < other ? 1 : -1, round: round, seed: seed)
        }
    }

    /// Removes from the sum of the reporting clients' vectors the masks they share
    /// with asked clients that did not report.
    static func removeDroppedMasks(_ sum: UnsafeMutableBufferPointer<Int32>, plan: RoundPlan, seed: UInt64) {
        let reporting = Set(plan.reporting)
        var vector = Array(sum)
        for dropped in plan.asked where !reporting.contains(dropped) {
            for client in plan.reporting {
                // The reporting client added sign·mask; take it away again.
                addMask(&vector, pair: (min(client, dropped), max(client, dropped)), sign: client < dropped ? -1 : 1,
                        round: plan.round, seed: seed)
            }
        }
        _ = sum.update(fromContentsOf: vector)
    }

    /// The mask of a pair: a stream of 32-bit words from the pair's seed, added
    /// (sign 1) or subtracted (sign −1) modulo 2^32.
    static func addMask(_ vector: inout [Int32], pair: (Int, Int), sign: Int32, round: Int, seed: UInt64) {
        var generator = SeededGenerator(seed: seed ^ (UInt64(round) &* 0xA24B_AED4_963E_E407),
                                        stream: (UInt64(pair.0) << 32) | UInt64(pair.1))
        var i = 0
        while i < vector.count {
            let word = generator.next()
            vector[i] = vector[i] &+ sign &* Int32(truncatingIfNeeded: word)
            if i + 1 < vector.count { vector[i + 1] = vector[i + 1] &+ sign &* Int32(truncatingIfNeeded: word >> 32) }
            i += 2
        }
    }

    /// The plain sums from the unmasked integer sum: Σ n_k·Δ_k, n and Σ n_k·loss_k.
    static func decode(_ sum: UnsafeMutableBufferPointer<Int32>, parameters: Int, scales: Scales)
        -> (weightedDelta: [Double], samples: Int, weightedLoss: Double) {
        let delta = (0..<parameters).map { Double(sum[$0]) / scales.update }
        return (delta, Int(UInt32(bitPattern: sum[parameters])), Double(sum[parameters + 1]) / scales.loss)
    }
}
