import Communication
import Coordination
import NeuralNet

/// What to do with a step whose gradients hold NaN or infinity.
public enum NonFiniteGradientPolicy: Sendable {
    /// End the run on every rank, naming the tensor.
    case stop
    /// Skip that step's update on every rank and go on.
    case skip
}

/// A step's gradients are not finite (a diverging run).
public struct NonFiniteGradient: Error, CustomStringConvertible {
    /// The optimizer step (1-based) whose gradients are not finite.
    public let step: Int
    public let tensor: String
    public let layer: String
    /// The pipeline stage that holds the tensor, if the model is split.
    public let stage: Int?
    /// This rank's loss at that step, when it has one.
    public let loss: Double?

    public var description: String {
        "step \(step): the gradient of \(tensor) (layer \(layer)\(stage.map { ", stage \($0)" } ?? "")) is not finite"
            + (loss.map { " (this rank's loss: \($0))" } ?? "")
    }
}

/// Checks gradients for NaN and infinity before each update, under the run's policy,
/// so every trainer stops or skips the same way.
public struct GradientScreen: Sendable {
    public let policy: NonFiniteGradientPolicy
    /// The rank that reports skipped steps.
    let reportingRank: Int

    public init(policy: NonFiniteGradientPolicy, reportingRank: Int) {
        self.policy = policy
        self.reportingRank = reportingRank
    }

    /// Whether the update of `step` (0-based) may be applied, for the gradients of
    /// `range` in `parameters`. With `group`, the ranks of the group hold different
    /// gradients (pipeline stages) and agree on the verdict, so none stops alone;
    /// without, every rank holds the same gradients (after an all-reduce) and
    /// reaches the same verdict by itself, at no cost in messages.
    public func admits(_ parameters: FlatParameters, range: Range<Int>, step: Int, layerName: (Int) -> String,
                       stage: Int? = nil, loss: Double? = nil, agreeingOver group: (any Communicator)? = nil) throws -> Bool {
        let found = firstNonFiniteGradient(parameters, in: range).map { slot in
            NonFiniteGradient(step: step + 1, tensor: slot.name, layer: layerName(slot.layerIndex), stage: stage, loss: loss)
        }
        var anywhere = found != nil
        if let group { anywhere = !group.allAgree(found == nil) }
        guard anywhere else { return true }
        switch policy {
        case .skip:
            ConsoleLog.info("\(found.map(\.description) ?? "step \(step + 1): a gradient is not finite"); update skipped",
                            rank: reportingRank)
            return false
        case .stop:
            guard let group else { throw found! }
            try group.together("step \(step + 1)") {
                if let found { throw found }
            }
            return true  // not reached: `together` throws on every rank when one failed
        }
    }
}

/// The first parameter tensor in `range` (of the flat buffer) with a NaN or infinite
/// gradient, if any. A scan of the exponent bits, which vectorises: a few ms for 10 M
/// parameters, so it can run every step.
func firstNonFiniteGradient(_ parameters: FlatParameters, in range: Range<Int>) -> ParameterSlot? {
    precondition(range.lowerBound >= 0 && range.upperBound <= parameters.count, "gradient range \(range) outside \(parameters.count)")
    let gradients = parameters.gradients
    // An all-ones exponent is infinity or NaN. Over a base pointer and a count: the
    // loop over `range` itself did not vectorise (2% of a LeNet step).
    var any: UInt32 = 0
    if let base = gradients.baseAddress {
        let first = base + range.lowerBound
        for i in 0..<range.count { any |= (first[i].bitPattern & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0 }
    }
    guard any != 0 else { return nil }
    return parameters.slots.first { slot in
        slot.range.overlaps(range) && slot.range.clamped(to: range).contains { !gradients[$0].isFinite }
    }
}
