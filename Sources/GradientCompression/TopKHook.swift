import Collectives
import Communication
import CommunicationHooks

/// Top-k sparsification with error feedback (Stich et al. 2018; Lin et al.'s Deep
/// Gradient Compression, 2018): each rank sends only the k = ⌈F·n⌉ entries of its
/// bucket with the largest magnitude and keeps the rest for later.
///
///     v_r = g_r + e_r                     error feedback
///     S_r = the k largest |v_r[i]|        (`largestMagnitudes`; ties to the lower index)
///     all-gather (i, v_r[i]) for i ∈ S_r  every rank receives every rank's k pairs
///     g[i] = (1/p) Σ_r v_r[i]·[i ∈ S_r]   summed in rank order: the same bits everywhere
///     e_r = v_r with S_r's entries zeroed
///
/// Each rank's selection differs, so the sum of sparse vectors is not an all-reduce:
/// it is an all-gather of p·k index/value pairs (a ring; Chorus's `ringAllgather`),
/// (p−1)·8k bytes sent per rank. It saves bytes over the ring all-reduce's
/// 2(p−1)/p·4n only while k < n/p: top-k pays for small F and few ranks.
///
/// A bucket in which some rank has a non-finite entry: that entry has infinite
/// magnitude, so it is always sent and reaches every rank, where the gradient
/// screen sees it; every rank then leaves its residual as it was, so the step's
/// contributions are not lost if the screen skips it.
final class TopKHook: CommunicationHook {
    let settings: TopKSettings
    /// Error feedback per bucket, kept across steps (checkpointed).
    private var residuals: [Int: [Float]] = [:]
    private var restored = RestoredBucketState()
    /// Every rank's (index, value bits) pairs of the bucket being communicated.
    private var pairs: [Int32] = []

    init(_ settings: TopKSettings) {
        // fatalError, not precondition: a release build keeps its message.
        if !(settings.fraction > 0 && settings.fraction <= 1) { fatalError("top-k needs a fraction in (0, 1], got \(settings.fraction)") }
        self.settings = settings
    }

    var configuration: String {
        "topk(fraction \(settings.fraction), error feedback \(settings.errorFeedback ? "on" : "off"))"
    }

    /// Entries each rank sends from a bucket of `count`.
    static func entriesSent(from count: Int, fraction: Double) -> Int {
        count == 0 ? 0 : min(count, max(1, Int((fraction * Double(count)).rounded(.up))))
    }

    func communicate(_ bucket: GradientBucket, _ context: HookContext) {
        let k = Self.entriesSent(from: bucket.gradients.count, fraction: settings.fraction)
        guard k > 0 else { return }
        let p = context.communicator.size
        if pairs.count < 2 * k * p { pairs = [Int32](repeating: 0, count: 2 * k * p) }
        // Taken out of the table, so updating it in place copies nothing.
        var residual = takeResidual(for: bucket)
        var chosen: [Int] = []
        context.compressing(bucket) {
            chosen = selectLargest(bucket.gradients, adding: residual, count: k, rank: context.communicator.rank)
        }
        pairs.withUnsafeMutableBufferPointer { all in
            ringAllgather(UnsafeMutableBufferPointer(rebasing: all[0..<(2 * k * p)]), over: context.communicator)
        }
        context.sent(payloadBytes: 2 * k * MemoryLayout<Int32>.stride)
        context.decompressing(bucket) {
            // Every rank gathered the same pairs: the same verdict everywhere. If some
            // value is not finite the residual stays as it was (only the gradients held the sum).
            let finite = (0..<(k * p)).allSatisfy { value(at: $0).isFinite }
            if settings.errorFeedback && finite {
                for i in 0..<bucket.gradients.count { residual[i] = bucket.gradients[i] }
                for i in chosen { residual[i] = 0 }
            }
            sumGathered(into: bucket.gradients, pairsPerRank: k, ranks: p)
        }
        if settings.errorFeedback { residuals[bucket.index] = residual }
    }

    /// v = gradients + residual, in place; this rank's k largest |v| into its slot of
    /// `pairs`. Returns their indices.
    private func selectLargest(_ gradients: UnsafeMutableBufferPointer<Float>, adding residual: [Float], count k: Int,
                               rank: Int) -> [Int] {
        if settings.errorFeedback {
            for i in 0..<gradients.count { gradients[i] += residual[i] }
        }
        let chosen = largestMagnitudes(UnsafeBufferPointer(gradients), count: k)
        let own = 2 * k * rank
        for (j, i) in chosen.enumerated() {
            pairs[own + 2 * j] = Int32(i)
            pairs[own + 2 * j + 1] = Int32(bitPattern: gradients[i].bitPattern)
        }
        return chosen
    }

    /// gradients = (1/p) Σ_r rank r's pairs, added in rank order: the same bits on every rank.
    private func sumGathered(into gradients: UnsafeMutableBufferPointer<Float>, pairsPerRank k: Int, ranks p: Int) {
        for i in 0..<gradients.count { gradients[i] = 0 }
        for pair in 0..<(k * p) { gradients[Int(pairs[2 * pair])] += value(at: pair) }
        let scale = 1 / Float(p)
        for i in 0..<gradients.count { gradients[i] *= scale }
    }

    private func value(at pair: Int) -> Float { Float(bitPattern: UInt32(bitPattern: pairs[2 * pair + 1])) }

    private func takeResidual(for bucket: GradientBucket) -> [Float] {
        let n = bucket.gradients.count
        guard settings.errorFeedback else { return [] }
        return residuals.removeValue(forKey: bucket.index) ?? restored.take("residual.\(bucket.index)", count: n)
            ?? [Float](repeating: 0, count: n)
    }

    var state: [String: [Float]] {
        var state = restored.unclaimed
        for (index, residual) in residuals { state["residual.\(index)"] = residual }
        return state
    }

    var keepsBucketState: Bool { true }

    func restore(_ state: [String: [Float]]) throws {
        residuals = [:]
        restored = RestoredBucketState(state)
    }
}
