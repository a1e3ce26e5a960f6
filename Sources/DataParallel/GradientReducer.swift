import Collectives
import Communication
import Coordination
import Foundation
import NeuralNet

/// Hands gradient buckets to the communication hook as they become ready,
/// overlapping with backward (PyTorch's `Reducer`).
///
/// With overlap, a communication thread (`SerialWorker`) owns all gradient traffic.
/// Backward calls `layerFinished(i)` after each layer; every bucket that layer
/// completes is queued, and the thread runs the hook on the queued buckets one after
/// another, in plan order, while the main thread computes the gradients of earlier
/// layers. `finish()` then waits only for the buckets still in flight: that wait is
/// the exposed communication.
///
/// Without overlap the same buckets go through the same hook in the same order, on
/// the main thread after backward, so both modes produce bitwise the same gradients;
/// only the timing differs.
///
/// Why a thread and not non-blocking steps between layers: a Chorus all-reduce is a
/// sequence of dependent steps (ring segments, shared-memory pieces) that needs
/// driving continuously, and a layer's backward can take milliseconds; polling only
/// between layers would leave the network idle for most of that time. MPI is
/// initialised with MPI_THREAD_MULTIPLE for this thread; the buckets travel on their
/// own communicator, so their messages never match the main thread's.
final class GradientReducer: @unchecked Sendable {
    // @unchecked Sendable: `reducedThisStep` and the timings are guarded by
    // `condition`; `gradients` is written by the hook on one thread at a time (the
    // worker while a step is in flight, the main thread otherwise), and `finish()`
    // orders the two through the same condition.
    let plan: BucketPlan
    let overlap: Bool
    private let hook: CommunicationHook
    private let context: HookContext
    private let parameters: FlatParameters
    private let tensors: [[ParameterSlot]]
    private let trace: TraceRecorder?
    private let watchdog: Watchdog?
    /// The communication thread, when overlapping.
    let worker: SerialWorker?

    private let condition = NSCondition()
    private var reducedThisStep = 0
    private(set) var stepNumber = 0
    /// Seconds spent in the hook, and seconds the main thread waited for it.
    private(set) var communicationSeconds = 0.0
    private(set) var exposedSeconds = 0.0

    init(plan: BucketPlan, parameters: FlatParameters, hook: CommunicationHook, context: HookContext, overlap: Bool,
         trace: TraceRecorder?, watchdog: Watchdog?) {
        self.plan = plan
        self.parameters = parameters
        self.hook = hook
        self.context = context
        self.overlap = overlap
        self.trace = trace
        self.watchdog = watchdog
        tensors = plan.buckets.map { bucket in parameters.slots.filter { bucket.range.contains($0.offset) } }
        worker = overlap ? SerialWorker(name: "chorus-communication") : nil
    }

    /// Stops the communication thread after the buckets already queued.
    func close() { worker?.stop() }

    deinit { worker?.stop() }

    /// Call before the backward pass of a step that communicates.
    func beginStep() {
        condition.lock()
        precondition(reducedThisStep == 0 || reducedThisStep == plan.buckets.count,
                     "a step began while the previous one was still reducing")
        reducedThisStep = 0
        stepNumber += 1
        condition.unlock()
    }

    /// Backward hook: layer `layer`'s gradients are final.
    func layerFinished(_ layer: Int) {
        guard let worker else { return }
        for index in plan.bucketsReady(afterLayer: layer) {
            // Weak: a reducer dropped mid-step must not be kept alive by its queue.
            worker.submit { [weak self] in
                guard let self else { return }
                reduce(index)
                condition.lock()
                reducedThisStep += 1
                if reducedThisStep == plan.buckets.count { condition.broadcast() }
                condition.unlock()
            }
        }
    }

    /// Returns when every bucket of this step is reduced.
    func finish() {
        let start = WallClock.seconds()
        if overlap {
            watchdog.waiting(for: "the gradient all-reduces of step \(stepNumber) (\(plan.buckets.count) buckets)") {
                condition.lock()
                while reducedThisStep < plan.buckets.count { condition.wait() }
                condition.unlock()
            }
        } else {
            for index in plan.buckets.indices { reduce(index) }
            reducedThisStep = plan.buckets.count
        }
        exposedSeconds += WallClock.seconds() - start
        trace?.span("wait for gradients", category: "wait", since: start)
    }

    private func reduce(_ index: Int) {
        let bucket = plan.buckets[index]
        let start = WallClock.seconds()
        let gradients = UnsafeMutableBufferPointer(rebasing: parameters.gradients[bucket.range])
        watchdog.waiting(for: "the all-reduce of gradient bucket \(index) (\(bucket.range.count * 4) bytes) at step \(stepNumber)") {
            hook.communicate(GradientBucket(index: index, gradients: gradients, offset: bucket.range.lowerBound,
                                            tensors: tensors[index], step: stepNumber), context)
        }
        // One writer at a time: the worker, or the main thread without overlap.
        communicationSeconds += WallClock.seconds() - start
        trace?.span("all-reduce bucket \(index)", category: "allreduce", track: overlap ? .communication : .compute,
                    since: start, arguments: ["bytes": "\(bucket.range.count * 4)", "step": "\(stepNumber)",
                                              "parameters": bucket.parameters.joined(separator: " ")])
    }
}
