import Collectives
import Communication
import NeuralNet

/// What happens to a gradient bucket once every gradient in it is final: PyTorch
/// DDP's communication hook (`register_comm_hook`).
///
/// The reducer calls `communicate` for every bucket of every step that communicates,
/// in the plan's order (identical on every rank), one bucket at a time: on the
/// communication thread when backward overlaps, on the training thread otherwise.
/// When it returns, `bucket.gradients` must hold what every rank uses for the update
/// (the average over the ranks, for the default); every rank must end with the same
/// values, or the replicas drift apart.
///
/// A hook that keeps state across steps (error-feedback residuals, warm-start
/// matrices) exposes it through `state` and `restore`, so checkpoints hold it and a
/// resumed run continues bitwise; `configuration` is compared across ranks at start,
/// like every other setting. Gradient compression and a push to a parameter server
/// are hooks, not forks of the reducer.
public protocol CommunicationHook: AnyObject {
    /// The hook and its settings, for start-up agreement and metrics ("allreduce").
    var configuration: String { get }

    func communicate(_ bucket: GradientBucket, _ context: HookContext)

    /// Everything later steps depend on, by name (empty for a stateless hook).
    var state: [String: [Float]] { get }
    func restore(_ state: [String: [Float]]) throws
}

extension CommunicationHook {
    public var state: [String: [Float]] { [:] }
    public func restore(_ state: [String: [Float]]) throws {}
}

/// One bucket handed to a hook.
public struct GradientBucket {
    /// The bucket's position in the plan (0: the last layers' gradients, reduced first).
    public let index: Int
    /// The bucket's gradients: a range of the flat gradient buffer, reduced in place.
    public let gradients: UnsafeMutableBufferPointer<Float>
    /// Where in the flat buffer the range starts.
    public let offset: Int
    /// The tensors in the bucket, with offsets into the flat buffer.
    public let tensors: [ParameterSlot]
    /// The optimizer step being reduced (1-based).
    public let step: Int
}

/// What a hook may use: the gradient communicator (the reducer's own, so its
/// messages never match other traffic) and Chorus's all-reduce over it.
public struct HookContext {
    public let communicator: any Communicator
    public let allreducer: Allreducer
    /// The all-reduce algorithm the run asked for.
    public let algorithm: AllreduceAlgorithm
}

/// The default hook: each bucket all-reduced to its average, in place, with the
/// run's algorithm (the 1/p is folded into the all-reduce's last addition).
public final class AveragingHook: CommunicationHook {
    public init() {}

    public var configuration: String { "average" }

    public func communicate(_ bucket: GradientBucket, _ context: HookContext) {
        context.allreducer.allreduce(bucket.gradients, .average, algorithm: context.algorithm)
    }
}
