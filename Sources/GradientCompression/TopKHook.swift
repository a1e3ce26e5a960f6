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
    private var restored: [String: [Float]] = [:]
    private var pairs: [Int32] = []

    init(_ settings: TopKSettings) {
        self.settings = settings
    }

    var configuration: String {
        "topk(fraction \(settings.fraction), error feedback \(settings.errorFeedback ? "on" : "off"))"
    }

    /// Entries each rank sends from a bucket of `count`.
    static func kept(_ count: Int, fraction: Double) -> Int {
        count == 0 ? 0 : min(count, max(1, Int((fraction * Double(count)).rounded(.up))))
    }

    func communicate(_ bucket: GradientBucket, _ context: HookContext) {
        let n = bucket.gradients.count, gradients = bucket.gradients
        let k = Self.kept(n, fraction: settings.fraction)
        guard k > 0 else { return }
        let p = context.communicator.size, rank = context.communicator.rank
        if pairs.count < 2 * k * p { pairs = [Int32](repeating: 0, count: 2 * k * p) }
        // Taken out of the table, so updating it in place copies nothing.
        var residual = takeResidual(for: bucket)
        var chosen: [Int] = []
        context.compressing(bucket) {
            if settings.errorFeedback {
                for i in 0..<n { gradients[i] += residual[i] }
            }
            chosen = largestMagnitudes(UnsafeBufferPointer(gradients), count: k)
            let own = 2 * k * rank
            for (j, i) in chosen.enumerated() {
                pairs[own + 2 * j] = Int32(i)
                pairs[own + 2 * j + 1] = Int32(bitPattern: gradients[i].bitPattern)
            }
        }
        pairs.withUnsafeMutableBufferPointer { all in
            ringAllgather(UnsafeMutableBufferPointer(rebasing: all[0..<(2 * k * p)]), over: context.communicator)
        }
        context.sent(payloadBytes: 2 * k * MemoryLayout<Int32>.stride)
        context.decompressing(bucket) {
            // Every rank gathered the same pairs: the same verdict everywhere.
            let finite = (0..<(k * p)).allSatisfy { Float(bitPattern: UInt32(bitPattern: pairs[2 * $0 + 1])).isFinite }
            // Otherwise the residual stays as it was (only the gradients held the sum).
            if settings.errorFeedback && finite {
                for i in 0..<n { residual[i] = gradients[i] }
                for i in chosen { residual[i] = 0 }
            }
            for i in 0..<n { gradients[i] = 0 }
            for r in 0..<p {
                for j in 0..<k {
                    let index = Int(pairs[2 * (r * k + j)])
                    gradients[index] += Float(bitPattern: UInt32(bitPattern: pairs[2 * (r * k + j) + 1]))
                }
            }
            let scale = 1 / Float(p)
            for i in 0..<n { gradients[i] *= scale }
        }
        if settings.errorFeedback { residuals[bucket.index] = residual }
    }

    private func takeResidual(for bucket: GradientBucket) -> [Float] {
        let n = bucket.gradients.count
        guard settings.errorFeedback else { return [] }
        if let residual = residuals.removeValue(forKey: bucket.index) { return residual }
        if let residual = restored.removeValue(forKey: "residual.\(bucket.index)") {
            if residual.count != n {
                fatalError("the checkpoint's top-k residual of gradient bucket \(bucket.index) does not fit this model's bucket; "
                           + "resume with the model, bucket cap and compression of the run that wrote it")
            }
            return residual
        }
        return [Float](repeating: 0, count: n)
    }

    var state: [String: [Float]] {
        var state = restored
        for (index, residual) in residuals { state["residual.\(index)"] = residual }
        return state
    }

    var keepsBucketState: Bool { true }

    func restore(_ state: [String: [Float]]) throws {
        residuals = [:]
        restored = state
    }
}
