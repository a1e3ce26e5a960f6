/// PowerSGD's settings (Vogels et al., NeurIPS 2019; PyTorch's `PowerSGDState`).
public struct PowerSGDSettings: Sendable, Equatable {
    /// The rank R of each gradient matrix's approximation.
    public var rank: Int
    /// A tensor is compressed only if its rows·columns elements are at least this many
    /// times the (rows + columns)·R it would send; others are averaged as they are.
    public var minCompressionRatio: Double = 2
    /// Steps 1…startStep are averaged uncompressed (a warm-up; PyTorch's
    /// `start_powerSGD_iter`); compression starts at step startStep + 1.
    public var startStep = 0
    /// Carry each rank's approximation error into its next step.
    public var errorFeedback = true
    /// Start each step's power iteration from the previous step's Q.
    public var warmStart = true
    /// Seeds the random initial Q, the same on every rank.
    public var seed: UInt64 = 0

    public init(rank: Int) { self.rank = rank }
}

/// Top-k sparsification's settings (Stich et al. 2018, Lin et al. 2018).
public struct TopKSettings: Sendable, Equatable {
    /// The fraction of each bucket's entries each rank sends (0 < fraction ≤ 1).
    public var fraction: Double
    /// Carry what was not sent into the next step.
    public var errorFeedback = true

    public init(fraction: Double) { self.fraction = fraction }
}
