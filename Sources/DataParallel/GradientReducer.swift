import Collectives
import Communication
import CommunicationHooks
import Coordination
import Foundation
import NeuralNet

/// Hands gradient buckets to the communication hook as they become ready,
/// overlapping with backward (PyTorch's `Reducer`).
///
/// With overlap, a communication thread (`SerialWorker`) owns all gradient traffic.
/// Backward calls `layerFinished(i)` as each layer's gradients become final; a bucket
/// is ready when every layer with a tensor in it has finished, and buckets are handed
/// to the thread strictly in plan order (a ready bucket waits for the ones before
/// it), so every rank runs the same collectives in the same order whatever order its
/// model's backward finishes layers in. The thread runs the hook on each bucket while
/// the main thread computes the gradients of earlier layers; `finish()` then waits
/// only for the buckets still in flight: that wait is the exposed communication. The
/// plan's last bucket holds the model's lowest layers with parameters, which backward
/// finishes last, so nothing is left to overlap it with: `finish()` reduces it on the
/// main thread once the thread is done: two thread hand-overs a step fewer, and a
/// single-bucket model such as LeNet starts no thread at all. (A model whose lowest
/// layers finish early, through a skip connection, would overlap its last bucket no
/// more; none here does.) A
/// step that ends with buckets whose layers never finished is a programming error,
/// reported with the layers (PyTorch's "expected to have finished reduction").
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
    // @unchecked Sendable: the step's bookkeeping (`reducedThisStep`) is guarded by
    // `condition`. The gradients, the timings and the hook are used by one thread at
    // a time: the worker between a bucket's submission and the step's `finish()`,
    // the main thread otherwise; the submission (the worker's queue lock) and
    // `finish()` (this condition) order the hand-overs both ways.
    let plan: BucketPlan
    let overlap: Bool
    private let hook: CommunicationHook
    private let context: HookContext
    private let parameters: FlatParameters
    private let tensors: [[ParameterSlot]]
    private let trace: TraceRecorder?
    private let watchdog: Watchdog?
    /// The communication thread, when overlapping more than one bucket.
    let worker: SerialWorker?

    private let condition = NSCondition()
    private var reducedThisStep = 0
    /// Main thread only: layers still to finish per bucket, the next bucket to hand
    /// over, and whether a step is open (between `beginStep` and `finish`).
    private var pendingLayers: [Set<Int>] = []
    private var nextBucket = 0
    private var stepOpen = false
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
        worker = overlap && plan.buckets.count > 1 ? SerialWorker(name: "chorus-communication") : nil
    }

    /// Stops the communication thread after the buckets already queued.
    func close() { worker?.stop() }

    deinit { worker?.stop() }

    /// Call before the backward pass of a step that communicates.
    // The checks below are `fatalError`s, not preconditions: they report misuse of a
    // public API, and a release build drops a precondition's message.

    func beginStep() {
        if stepOpen { fatalError("prepareForBackward() called again before finalizeBackward() ended the step") }
        stepOpen = true
        reducedThisStep = 0
        pendingLayers = plan.buckets.map { Set($0.layers) }
        nextBucket = 0
        stepNumber += 1
    }

    /// Backward hook: layer `layer`'s gradients are final.
    func layerFinished(_ layer: Int) {
        if !stepOpen { fatalError("layer \(layer) was marked ready outside a step (call prepareForBackward() first)") }
        for index in plan.buckets.indices where pendingLayers[index].contains(layer) {
            pendingLayers[index].remove(layer)
        }
        // Marks are kept without overlap too, so a model that forgets one fails the
        // same way in both modes.
        guard let worker else { return }
        // In plan order only: the same sequence of collectives on every rank. The
        // last bucket stays for `finish()`.
        while nextBucket < plan.buckets.count - 1 && pendingLayers[nextBucket].isEmpty {
            let index = nextBucket
            nextBucket += 1
            // Weak: a reducer dropped mid-step must not be kept alive by its queue.
            worker.submit { [weak self] in
                guard let self else { return }
                reduce(index, onWorker: true)
                condition.lock()
                reducedThisStep += 1
                if reducedThisStep == plan.buckets.count - 1 { condition.broadcast() }
                condition.unlock()
            }
        }
    }

    /// Returns when every bucket of this step is reduced.
    func finish() {
        if !stepOpen { fatalError("finalizeBackward() without a step (call prepareForBackward() first)") }
        stepOpen = false
        let missing = Set(pendingLayers.flatMap { $0 }).sorted()
        if !missing.isEmpty {
            fatalError("step \(stepNumber) ended with layers \(missing) never marked ready: every layer with parameters "
                       + "must be marked (markLayerReady) during backward")
        }
        let start = MonotonicClock.seconds()
        let handedOver = overlap ? max(plan.buckets.count - 1, 0) : 0
        if handedOver > 0 {
            watchdog.waiting(for: "the gradient all-reduces of step \(stepNumber) (\(plan.buckets.count) buckets)") {
                condition.lock()
                while reducedThisStep < handedOver { condition.wait() }
                condition.unlock()
            }
        }
        for index in handedOver..<plan.buckets.count { reduce(index, onWorker: false) }
        exposedSeconds += MonotonicClock.seconds() - start
        trace?.span("wait for gradients", category: "wait", since: start)
    }

    private func reduce(_ index: Int, onWorker: Bool) {
        let bucket = plan.buckets[index]
        let start = MonotonicClock.seconds()
        let gradients = UnsafeMutableBufferPointer(rebasing: parameters.gradients[bucket.range])
        watchdog.waiting(for: "the all-reduce of gradient bucket \(index) (\(bucket.range.count * 4) bytes) at step \(stepNumber)") {
            hook.communicate(GradientBucket(index: index, gradients: gradients, offset: bucket.range.lowerBound,
                                            tensors: tensors[index], step: stepNumber), context)
        }
        // One writer at a time: the worker, or the main thread once the worker is done.
        communicationSeconds += MonotonicClock.seconds() - start
        context.meter.record(gradientBytes: bucket.range.count * MemoryLayout<Float>.stride)
        trace?.span("all-reduce bucket \(index)", category: "allreduce", track: onWorker ? .communication : .compute,
                    since: start, arguments: ["bytes": "\(bucket.range.count * 4)", "step": "\(stepNumber)",
                                              "parameters": bucket.parameters.joined(separator: " ")])
    }
}
