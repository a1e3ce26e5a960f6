import Foundation

/// The learning rate at each optimizer step: linear warm-up, then a decay.
///
///     step s < warmup:  lr · (s + 1) / warmup             (Goyal et al., 2017)
///     constant:         lr
///     cosine:           lr · ½·(1 + cos(π · (s − warmup) / (total − warmup)))
///     step:             lr · γ^⌊(s − warmup) / stepSize⌋
///
/// `lr` is the peak rate, after the linear scaling rule when that is on.
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Decay: Sendable, Equatable {
        case constant
        case cosine
        case step(every: Int, gamma: Float)
    }

    public let peak: Float
    public let warmupSteps: Int
    public let totalSteps: Int
    public let decay: Decay

    public init(peak: Float, warmupSteps: Int = 0, totalSteps: Int, decay: Decay = .constant) {
        self.peak = peak
        self.warmupSteps = max(0, warmupSteps)
        self.totalSteps = max(1, totalSteps)
        self.decay = decay
    }

    public func rate(atStep step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        let since = step - warmupSteps
        switch decay {
        case .constant:
            return peak
        case .cosine:
            let span = max(1, totalSteps - warmupSteps)
            let progress = min(1, Double(since) / Double(span))
            return peak * Float(0.5 * (1 + cos(Double.pi * progress)))
        case .step(let every, let gamma):
            return peak * pow(gamma, Float(since / max(1, every)))
        }
    }
}
