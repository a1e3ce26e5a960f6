import ArgumentParser
import Coordination
import GradientCompression
import TrainingLoop

/// Gradient compression flags of `ddp-train` (its buckets) and `pipe-train` (the
/// all-reduce across replicas): `--compress` picks the hook, the others tune
/// PowerSGD and top-k.
public struct CompressionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Gradient compression: none, fp16, bf16, powersgd:R (rank R) or topk:F (fraction F of each bucket).",
                               valueName: "method"))
    public var compress = "none"

    @Option(parsing: .unconditional,
            help: "PowerSGD compresses a tensor only if that shrinks it at least this many times; others are averaged as they are.")
    public var powersgdMinRatio: Double = PowerSGDSettings(rank: 1).minCompressionRatio

    @Option(parsing: .unconditional,
            help: "Steps averaged uncompressed before PowerSGD starts (default: the first 10% of the run's steps).")
    public var powersgdStartStep: Int?

    @Flag(help: "PowerSGD: draw a new Q every step instead of starting from the last one.")
    public var noWarmStart = false

    @Flag(help: "PowerSGD and top-k: drop what compression leaves out instead of carrying it to the next step.")
    public var noErrorFeedback = false

    public init() {}

    public func validate() throws { _ = try compression(seed: 0) }

    /// What the flags ask for, in the library's terms.
    public func compression(seed: UInt64) throws -> Compression {
        let parts = compress.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let method = parts.first ?? "", argument = parts.count == 2 ? parts[1] : nil
        try refuseSettingsThatDoNotApply(to: method)
        switch method {
        case "none", "fp16", "bf16":
            guard argument == nil else { throw ValidationError("--compress \(method) takes no argument (got \(compress))") }
            return method == "none" ? .none : method == "fp16" ? .float16 : .bfloat16
        case "powersgd": return try powerSGD(rank: argument, seed: seed)
        case "topk": return try topK(fraction: argument)
        default:
            throw ValidationError("--compress must be none, fp16, bf16, powersgd:R or topk:F (got \(compress))")
        }
    }

    private func powerSGD(rank argument: String?, seed: UInt64) throws -> Compression {
        guard let argument, let rank = Int(argument), (1...Self.largestRank).contains(rank) else {
            throw ValidationError("--compress powersgd needs a rank from 1 to \(Self.largestRank), as powersgd:2 (got \(compress))")
        }
        guard powersgdMinRatio.isFinite, powersgdMinRatio >= 1 else {
            throw ValidationError("--powersgd-min-ratio must be a number of at least 1 (got \(powersgdMinRatio))")
        }
        if let powersgdStartStep, powersgdStartStep < 0 {
            throw ValidationError("--powersgd-start-step must be at least 0 (got \(powersgdStartStep))")
        }
        var settings = PowerSGDSettings(rank: rank)
        settings.minCompressionRatio = powersgdMinRatio
        settings.start = powersgdStartStep.map { .afterStep($0) } ?? Self.defaultStart
        settings.warmStart = !noWarmStart
        settings.errorFeedback = !noErrorFeedback
        settings.seed = seed
        return .powerSGD(settings)
    }

    private func topK(fraction argument: String?) throws -> Compression {
        guard let argument, let fraction = Double(argument), fraction > 0, fraction <= 1 else {
            throw ValidationError("--compress topk needs a fraction in (0, 1], as topk:0.01 (got \(compress))")
        }
        var settings = TopKSettings(fraction: fraction)
        settings.errorFeedback = !noErrorFeedback
        return .topK(settings)
    }

    /// A PowerSGD or top-k setting given with another method would silently do nothing.
    private func refuseSettingsThatDoNotApply(to method: String) throws {
        let powerSGDOnly = [("--powersgd-min-ratio", powersgdMinRatio != PowerSGDSettings(rank: 1).minCompressionRatio),
                            ("--powersgd-start-step", powersgdStartStep != nil), ("--no-warm-start", noWarmStart)]
        for (flag, given) in powerSGDOnly where given && method != "powersgd" {
            throw ValidationError("\(flag) applies to --compress powersgd:R only (got --compress \(compress))")
        }
        if noErrorFeedback && method != "powersgd" && method != "topk" {
            throw ValidationError("--no-error-feedback applies to --compress powersgd:R and topk:F only (got --compress \(compress))")
        }
    }

    /// The first 10% of the run averaged uncompressed (`PowerSGDSettings.Start`).
    static let defaultStart = PowerSGDSettings.Start.afterFraction(0.1)

    /// Beyond this the orthogonalisation's cost grows with R² and the bytes saved shrink.
    static let largestRank = 64
}

/// A gradient that stopped being finite in a run that narrows gradients to float16,
/// whose largest value is 65,504: the likelier cause than the learning rate alone.
struct Float16Overflow: Error {
    let underlying: any Error

    /// Runs `body`; under fp16 a non-finite gradient is reported with float16's range.
    static func explaining<R>(_ compression: Compression, _ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch where compression == .float16 && isNonFiniteGradient(error) {
            throw Float16Overflow(underlying: error)
        }
    }

    private static func isNonFiniteGradient(_ error: any Error) -> Bool {
        if error is NonFiniteGradient { return true }
        if let failure = error as? GroupFailure, let inner = failure.error { return isNonFiniteGradient(inner) }
        return false
    }
}
