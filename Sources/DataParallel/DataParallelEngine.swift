import Collectives
import Communication
import CommunicationHooks
import Coordination
import NeuralNet

/// Synchronous data parallelism for any model whose parameters live in one
/// `FlatParameters`: the piece a custom training loop wraps, as PyTorch's
/// `DistributedDataParallel` wraps a module.
///
/// Lifecycle (every rank of `communicator`, in the same order; docs/ddp.md):
///
///     let engine = try DataParallelEngine(parameters: model.parameters, communicator: world)
///     engine.broadcastParameters()            // every rank starts from rank 0's values
///     per step:
///         parameters.zeroGradients()
///         engine.prepareForBackward()
///         backward, calling engine.markLayerReady(i) as layer i's gradients are final
///         engine.finalizeBackward()           // gradients now averaged over the ranks
///         optimizer.step(...)
///     engine.close()                          // collective: frees its groups
///
/// Parameters are grouped into buckets by layer, last layer first (`BucketPlan`); a
/// bucket is handed to the communication hook (`AveragingHook` by default) as soon as
/// its last layer is ready, on a communication thread, so communication overlaps the
/// rest of backward. Gradient traffic runs on a duplicate of `communicator`, so it
/// never matches the caller's messages.
///
/// Dropping an engine without `close()` stops its thread (no collective call happens
/// in `deinit`); the groups it made are then reclaimed when the transport shuts down.
public final class DataParallelEngine {
    public struct Configuration: Sendable, Equatable {
        /// The all-reduce algorithm for the buckets (`auto`: by size and node layout).
        public var algorithm: AllreduceAlgorithm
        /// Treat blocks of this many ranks as one node (nil: ranks sharing memory).
        public var ranksPerNode: Int?
        public var bucketCapBytes: Int
        public var firstBucketCapBytes: Int
        /// Reduce buckets during backward (false: after it, for comparison; same bits).
        public var overlap: Bool
        /// Measured choices for `auto` (`AllreduceDecisionTable`; nil: the built-in rules).
        public var decisionTable: AllreduceDecisionTable?

        public init(algorithm: AllreduceAlgorithm = .auto, ranksPerNode: Int? = nil,
                    bucketCapBytes: Int = BucketPlan.defaultCapBytes, firstBucketCapBytes: Int = BucketPlan.defaultFirstCapBytes,
                    overlap: Bool = true, decisionTable: AllreduceDecisionTable? = nil) {
            self.algorithm = algorithm
            self.decisionTable = decisionTable
            self.ranksPerNode = ranksPerNode
            self.bucketCapBytes = bucketCapBytes
            self.firstBucketCapBytes = firstBucketCapBytes
            self.overlap = overlap
        }
    }

    public let parameters: FlatParameters
    /// The ranks whose gradients are averaged.
    public let communicator: any Communicator
    public let configuration: Configuration
    public let plan: BucketPlan
    /// Chorus's all-reduce over the gradient group (its node layout, shared window).
    public let allreducer: Allreducer
    public let hook: CommunicationHook
    private let gradientGroup: any Communicator
    private let sentBytes: CountingCommunicator.Counter
    /// What the hook's compression cost and saved.
    public let meter = HookMeter()
    private let reducer: GradientReducer
    private var closed = false

    /// Collective: every rank of `communicator` creates it at the same point, for the
    /// same parameter layout and configuration (a different bucket plan on some rank
    /// is an error on every rank, not a corrupted step).
    public init(parameters: FlatParameters, communicator: any Communicator, configuration: Configuration = Configuration(),
                hook: CommunicationHook = AveragingHook(), trace: TraceRecorder? = nil, watchdog: Watchdog? = nil) throws {
        self.parameters = parameters
        self.communicator = communicator
        self.configuration = configuration
        self.hook = hook
        plan = BucketPlan(slots: parameters.slots, capBytes: configuration.bucketCapBytes,
                          firstCapBytes: configuration.firstBucketCapBytes)
        // The plan is a pure function of the layout and the caps; a rank that
        // disagrees would reduce different ranges and corrupt every step, so check once.
        let fingerprint = plan.fingerprint
        guard communicator.allreduce(fingerprint, op: .min) == communicator.allreduce(fingerprint, op: .max) else {
            throw BucketPlanMismatch()
        }
        // What decides which collectives the buckets run, compared before the first.
        try communicator.agree(on: [
            ConfigurationField(DataParallelField.algorithm, configuration.algorithm.rawValue),
            ConfigurationField(DataParallelField.nodes, configuration.ranksPerNode.map { "\($0) ranks per node" } ?? "shared memory"),
            ConfigurationField(DataParallelField.hook, hook.configuration),
            ConfigurationField(DataParallelField.decisionTable, AllreduceDecisionTable.summary(configuration.decisionTable)),
        ])
        // Counted, so the run can report the bytes its gradients really sent.
        let counting = CountingCommunicator(communicator.duplicate())
        gradientGroup = counting
        sentBytes = counting.counter
        allreducer = Allreducer(world: gradientGroup, ranksPerNode: configuration.ranksPerNode,
                                decisionTable: configuration.decisionTable)
        reducer = GradientReducer(plan: plan, parameters: parameters, hook: hook,
                                  context: HookContext(communicator: gradientGroup, allreducer: allreducer,
                                                       algorithm: configuration.algorithm, meter: meter, trace: trace,
                                                       track: configuration.overlap ? .communication : .compute),
                                  overlap: configuration.overlap, trace: trace, watchdog: watchdog)
    }

    /// Gives every rank `root`'s parameter values. Collective.
    public func broadcastParameters(from root: Int = 0) {
        communicator.broadcast(parameters.values, root: root)
    }

    /// Call before the backward pass whose gradients are to be averaged (the last
    /// micro-batch's, with gradient accumulation).
    public func prepareForBackward() {
        checkOpen("prepareForBackward()")
        reducer.beginStep()
    }

    /// Layer `layer`'s gradients are final: buckets it completes start travelling.
    /// Mark every layer that owns parameters (`ParameterSlot.layerIndex`), in the
    /// order backward finishes them; marking one without parameters does nothing.
    /// Buckets still go out in plan order, the same on every rank.
    public func markLayerReady(_ layer: Int) {
        checkOpen("markLayerReady(\(layer))")
        reducer.layerFinished(layer)
    }

    /// Returns when every bucket has been communicated: the gradients are averaged.
    public func finalizeBackward() {
        checkOpen("finalizeBackward()")
        reducer.finish()
    }

    private func checkOpen(_ call: String) {
        if closed { fatalError("DataParallelEngine.\(call) after close()") }
    }

    /// Stops the communication thread and frees the engine's groups. Collective.
    public func close() {
        guard !closed else { return }
        closed = true
        reducer.close()
        allreducer.release()
        gradientGroup.release()
    }

    deinit { reducer.close() }

    // MARK: What it measured

    /// Seconds spent communicating buckets, and seconds backward waited for them.
    public var communicationSeconds: Double { reducer.communicationSeconds }
    public var exposedCommunicationSeconds: Double { reducer.exposedSeconds }

    /// Bytes this rank sent as messages for its gradients (the node's shared window
    /// and the transport's own collectives excluded), and the steps that communicated.
    public var bytesSent: Int { sentBytes.bytes }
    public var communicatedSteps: Int { reducer.stepNumber }

    /// Bucket sizes in bytes, in reduction order.
    public var bucketBytes: [Int] { plan.buckets.map { $0.range.count * MemoryLayout<Float>.stride } }

    /// The algorithm that runs for the largest bucket (`auto` resolved) when the buckets
    /// travel as float32; a compressing hook may send fewer bytes or 16-bit values, for
    /// which `auto` can choose otherwise.
    public var resolvedAlgorithm: AllreduceAlgorithm {
        allreducer.resolve(configuration.algorithm, bytes: bucketBytes.max() ?? 0)
    }
}

/// Ranks computed different gradient bucket plans: different models or bucket caps.
public struct BucketPlanMismatch: Error, CustomStringConvertible {
    public var description: String {
        "ranks computed different gradient bucket plans; every rank must run the same model and bucket cap"
    }
}
