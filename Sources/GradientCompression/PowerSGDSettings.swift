/// PowerSGD's settings (Vogels et al., NeurIPS 2019; PyTorch's `PowerSGDState`).
public struct PowerSGDSettings: Sendable, Equatable {
    /// The rank R of each gradient matrix's approximation.
    public var rank: Int
    /// A tensor is compressed only if its rows·columns elements are at least this many
    /// times the (rows + columns)·R it would send; others are averaged as they are.
    public var minCompressionRatio: Double = 2
    /// When compression starts; the steps before are averaged uncompressed (a
    /// warm-up; PyTorch's `start_powerSGD_iter`). `ddp-train` starts after 10% of the
    /// run; the library default compresses from the first step, because only a
    /// loop that knows the run's length (`CommunicationHook.prepare`) can resolve a
    /// fraction.
    public var start = Start.afterStep(0)
    /// Carry each rank's approximation error into its next step.
    public var errorFeedback = true
    /// Start each step's power iteration from the previous step's Q.
    public var warmStart = true
    /// Seeds the random initial Q, the same on every rank.
    public var seed: UInt64 = 0

    public init(rank: Int) { self.rank = rank }

    public enum Start: Sendable, Equatable, CustomStringConvertible {
        /// Steps 1…n are averaged; compression starts at step n + 1.
        case afterStep(Int)
        /// The first fraction of the run's steps is averaged. 10% (`ddp-train`'s
        /// default) is where PyTorch's PowerSGD documentation says to start tuning: early
        /// training is sensitive to inexact gradients (LeNet on Fashion-MNIST, 4
        /// ranks, 2 epochs: 1.5 points lower from step 1, 0.4 with the first 10%
        /// averaged; docs/compression.md). PyTorch's own default, a fixed 1,000
        /// iterations, never compresses a run shorter than that.
        case afterFraction(Double)

        /// The last averaged step of a run of `totalSteps`.
        public func lastAveragedStep(totalSteps: Int) -> Int {
            switch self {
            case .afterStep(let step): step
            case .afterFraction(let fraction): Int((fraction * Double(totalSteps)).rounded())
            }
        }

        public var description: String {
            switch self {
            case .afterStep(let step): "after step \(step)"
            case .afterFraction(let fraction): "after \((fraction * 1000).rounded() / 10)% of the run"
            }
        }
    }
}

/// Top-k sparsification's settings (Stich et al. 2018, Lin et al. 2018).
public struct TopKSettings: Sendable, Equatable {
    /// The fraction of each bucket's entries each rank sends (0 < fraction ≤ 1).
    public var fraction: Double
    /// Carry what was not sent into the next step.
    public var errorFeedback = true

    public init(fraction: Double) { self.fraction = fraction }
}
