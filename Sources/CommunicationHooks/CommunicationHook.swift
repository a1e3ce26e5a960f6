import Collectives
import Communication
import Coordination
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
/// are hooks, not forks of the reducer; the data-parallel engine runs them on its
/// buckets, the pipeline on each stage's gradients across replicas.
public protocol CommunicationHook: AnyObject {
    /// The hook and its settings, for start-up agreement and metrics ("allreduce").
    var configuration: String { get }

    func communicate(_ bucket: GradientBucket, _ context: HookContext)

    /// Everything later steps depend on, by name (empty for a stateless hook).
    var state: [String: [Float]] { get }
    func restore(_ state: [String: [Float]]) throws

    /// Called once before the first step by a loop that knows how long the run is
    /// (the data-parallel and pipeline strategies do), for hooks that schedule by it.
    func prepare(totalSteps: Int)

    /// Whether `state` holds per-bucket tensors, which a resumed run must find at the
    /// same bucket boundaries (trainers then add their bucket layout to checkpoints).
    var keepsBucketState: Bool { get }
}

extension CommunicationHook {
    public var state: [String: [Float]] { [:] }
    public func restore(_ state: [String: [Float]]) throws {}
    public func prepare(totalSteps: Int) {}
    public var keepsBucketState: Bool { false }
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
    /// The step being reduced, counted by whoever runs the hook from 1 (the
    /// data-parallel engine counts its own steps, so after a resume it starts at 1
    /// again: a hook that schedules by step keeps its own count in its state).
    public let step: Int

    public init(index: Int, gradients: UnsafeMutableBufferPointer<Float>, offset: Int, tensors: [ParameterSlot], step: Int) {
        self.index = index
        self.gradients = gradients
        self.offset = offset
        self.tensors = tensors
        self.step = step
    }
}

/// The name of the hook setting in start-up agreement, for every trainer that runs one.
public enum HookField {
    public static let hook = "the communication hook"
}

/// What a hook may use: the gradient communicator (the reducer's own, so its
/// messages never match other traffic), Chorus's all-reduce over it, and the
/// meter and trace its compression work is recorded in.
public struct HookContext {
    public let communicator: any Communicator
    public let allreducer: Allreducer
    /// The all-reduce algorithm the run asked for.
    public let algorithm: AllreduceAlgorithm
    public let meter: HookMeter
    public let trace: TraceRecorder?
    /// The trace track the hook runs on (communication when overlapping backward).
    public let track: TraceRecorder.Track

    public init(communicator: any Communicator, allreducer: Allreducer, algorithm: AllreduceAlgorithm,
                meter: HookMeter = HookMeter(), trace: TraceRecorder? = nil, track: TraceRecorder.Track = .compute) {
        self.communicator = communicator
        self.allreducer = allreducer
        self.algorithm = algorithm
        self.meter = meter
        self.trace = trace
        self.track = track
    }

    /// Runs a hook's compression of `bucket` (before its collectives), timed into the
    /// meter and traced as its own slice.
    public func compressing<R>(_ bucket: GradientBucket, _ body: () throws -> R) rethrows -> R {
        try measured("compress", bucket, \.compressSeconds, body)
    }

    /// Runs a hook's decompression of `bucket` (after its collectives), likewise.
    public func decompressing<R>(_ bucket: GradientBucket, _ body: () throws -> R) rethrows -> R {
        try measured("decompress", bucket, \.decompressSeconds, body)
    }

    /// Records that this rank handed `bytes` of `bucket`'s payload to collectives.
    public func sent(payloadBytes bytes: Int) {
        meter.payloadBytes += bytes
    }

    private func measured<R>(_ phase: String, _ bucket: GradientBucket, _ total: ReferenceWritableKeyPath<HookMeter, Double>,
                             _ body: () throws -> R) rethrows -> R {
        let start = MonotonicClock.seconds()
        defer {
            meter[keyPath: total] += MonotonicClock.seconds() - start
            trace?.span("\(phase) bucket \(bucket.index)", category: phase, track: track, since: start,
                        arguments: ["step": "\(bucket.step)"])
        }
        return try body()
    }
}

/// The default hook: each bucket all-reduced to its average, in place, with the
/// run's algorithm (the 1/p is folded into the all-reduce's last addition).
public final class AveragingHook: CommunicationHook {
    public init() {}

    public var configuration: String { "average" }

    public func communicate(_ bucket: GradientBucket, _ context: HookContext) {
        context.allreducer.allreduce(bucket.gradients, .average, algorithm: context.algorithm)
        context.sent(payloadBytes: bucket.gradients.count * MemoryLayout<Float>.stride)
    }
}
