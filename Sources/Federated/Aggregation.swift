import Collectives
import Communication
import NeuralNet

/// A round's sums over the reporting clients, the same on every rank.
struct RoundAggregate {
    /// Σ n_k·Δ_k per parameter.
    var weightedDelta: [Double]
    /// n = Σ n_k.
    var samples: Int
    /// Σ n_k·loss_k.
    var weightedLoss: Double
    /// How far the result may be from the plain sums' average (0 when exact), and the
    /// update coordinates clipped on the way.
    var errorBound = 0.0
    var clipped = 0

    var meanLoss: Double { samples > 0 ? weightedLoss / Double(samples) : .nan }
}

/// How the reporting clients' updates are summed over the ranks. Every rank calls it
/// with its own clients (its block of `plan.reporting`, in order).
protocol UpdateAggregator {
    func aggregate(_ mine: [ClientUpdate], plan: RoundPlan, askedSamples: Int, parameters: Int,
                   over group: any Communicator) -> RoundAggregate
    /// Bytes a client uploads.
    func uploadBytes(parameters: Int) -> Int
    var configuration: String { get }
}

/// Plain sums in float64, folded client by client in ascending order along the chain
/// of ranks (`orderedReduce`): the same bits at any rank count.
struct PlainAggregator: UpdateAggregator {
    func aggregate(_ mine: [ClientUpdate], plan: RoundPlan, askedSamples: Int, parameters: Int,
                   over group: any Communicator) -> RoundAggregate {
        var sums = [Double](repeating: 0, count: parameters + 2)
        sums.withUnsafeMutableBufferPointer { buffer in
            orderedReduce(buffer, over: group) { running in
                for update in mine {
                    let weight = Double(update.samples)
                    update.delta.withUnsafeBufferPointer { delta in
                        for i in 0..<parameters { running[i] += weight * Double(delta[i]) }
                    }
                    running[parameters] += weight
                    running[parameters + 1] += weight * update.meanLoss
                }
            }
        }
        return RoundAggregate(weightedDelta: Array(sums[0..<parameters]), samples: Int(sums[parameters]),
                              weightedLoss: sums[parameters + 1])
    }

    func uploadBytes(parameters: Int) -> Int { parameters * MemoryLayout<Float>.size }
    var configuration: String { "plain" }
}

/// Masked fixed-point sums modulo 2^32 (`SecureAggregation`): along the chain every
/// partial sum is still masked; only the whole sum, with the dropped clients' masks
/// removed, decodes.
struct SecureAggregator: UpdateAggregator {
    let scheme: SecureAggregation
    let seed: UInt64

    func aggregate(_ mine: [ClientUpdate], plan: RoundPlan, askedSamples: Int, parameters: Int,
                   over group: any Communicator) -> RoundAggregate {
        let scales = scheme.scales(askedSamples: askedSamples)
        var clipped = 0
        let masked = mine.map { update in
            var vector = scheme.encode(update, scales: scales, clipped: &clipped)
            SecureAggregation.mask(&vector, client: update.client, asked: plan.asked, round: plan.round, seed: seed)
            return vector
        }
        var sums = [Int32](repeating: 0, count: parameters + 2)
        var aggregate = sums.withUnsafeMutableBufferPointer { buffer in
            orderedReduce(buffer, over: group) { running in
                for vector in masked {
                    for i in 0..<running.count { running[i] = running[i] &+ vector[i] }
                }
            }
            SecureAggregation.removeDroppedMasks(buffer, plan: plan, seed: seed)
            let (delta, samples, loss) = SecureAggregation.decode(buffer, parameters: parameters, scales: scales)
            return RoundAggregate(weightedDelta: delta, samples: samples, weightedLoss: loss)
        }
        aggregate.errorBound = SecureAggregation.errorBound(reporting: plan.reporting.count, samples: aggregate.samples,
                                                            scales: scales)
        aggregate.clipped = Int(group.allreduce(Int64(clipped), op: .sum))
        return aggregate
    }

    func uploadBytes(parameters: Int) -> Int { (parameters + 2) * MemoryLayout<Int32>.size }
    var configuration: String { "secure (clip ±\(scheme.clipBound), pairwise masks mod 2^32)" }
}
