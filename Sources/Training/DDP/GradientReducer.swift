import ChorusMPI
import Collectives
import Foundation

/// Averages the gradient buckets across ranks, overlapping with backward.
///
/// With overlap, a communication thread owns all gradient traffic. Backward calls
/// `layerFinished(i)` after each layer; every bucket that layer completes is queued,
/// and the thread all-reduces queued buckets one after another, in plan order, while
/// the main thread computes the gradients of earlier layers. `finish()` then waits
/// only for the buckets still in flight: that wait is the exposed communication.
///
/// Without overlap the same buckets are reduced in the same order with the same
/// algorithm, on the main thread after backward, so both modes produce bitwise the
/// same gradients; only the timing differs.
///
/// Why a thread and not non-blocking steps between layers: a Chorus all-reduce is a
/// sequence of dependent steps (ring segments, shared-memory pieces) that needs
/// driving continuously, and a layer's backward can take milliseconds; polling only
/// between layers would leave the network idle for most of that time. MPI was
/// initialised with MPI_THREAD_MULTIPLE, and while a step is in flight only this
/// thread calls MPI.
///
/// Averaging is the all-reduce's `.average`, which folds 1/p into its last addition.
public final class GradientReducer: @unchecked Sendable {
    public let plan: BucketPlan
    public let overlap: Bool
    private let allreducer: Allreducer
    private let algorithm: AllreduceAlgorithm
    private let gradients: UnsafeMutableBufferPointer<Float>
    private let trace: TraceRecorder?
    private let watchdog: Watchdog?

    private let condition = NSCondition()
    private var queue: [Int] = []
    private var reducedThisStep = 0
    private var stopping = false
    private var thread: Thread?

    /// Seconds spent inside all-reduce calls, and seconds the main thread waited for them.
    public private(set) var communicationSeconds = 0.0
    public private(set) var exposedSeconds = 0.0
    private var stepNumber = 0

    public init(plan: BucketPlan, allreducer: Allreducer, algorithm: AllreduceAlgorithm,
                gradients: UnsafeMutableBufferPointer<Float>, overlap: Bool, trace: TraceRecorder?,
                watchdog: Watchdog? = nil) {
        self.plan = plan
        self.allreducer = allreducer
        self.algorithm = algorithm
        self.gradients = gradients
        self.overlap = overlap
        self.trace = trace
        self.watchdog = watchdog
        if overlap {
            let thread = Thread { [unowned self] in self.communicationLoop() }
            thread.name = "chorus-communication"
            thread.stackSize = 1 << 20
            self.thread = thread
            thread.start()
        }
    }

    /// Stops the communication thread (after the buckets already queued).
    public func close() {
        condition.lock()
        let running = thread != nil && !stopping
        stopping = true
        condition.broadcast()
        condition.unlock()
        if running { exited.wait() }
    }
    private let exited = DispatchSemaphore(value: 0)

    deinit { close() }

    /// Call before the backward pass of a step that communicates.
    public func beginStep() {
        condition.lock()
        precondition(queue.isEmpty && (reducedThisStep == 0 || reducedThisStep == plan.buckets.count),
                     "a step began while the previous one was still reducing")
        reducedThisStep = 0
        stepNumber += 1
        condition.unlock()
    }

    /// Backward hook: layer `layer`'s gradients are final.
    public func layerFinished(_ layer: Int) {
        guard overlap else { return }
        let ready = plan.bucketsReady(afterLayer: layer)
        guard !ready.isEmpty else { return }
        condition.lock()
        queue.append(contentsOf: ready)
        condition.signal()
        condition.unlock()
    }

    /// Returns when every bucket of this step is reduced.
    public func finish() {
        let start = MPIRuntime.wallTime()
        if overlap {
            watchdog.waiting(for: "the gradient all-reduces of step \(stepNumber) (\(plan.buckets.count) buckets)") {
                condition.lock()
                while reducedThisStep < plan.buckets.count { condition.wait() }
                condition.unlock()
            }
        } else {
            for index in plan.buckets.indices { reduce(index) }
        }
        let waited = MPIRuntime.wallTime() - start
        exposedSeconds += waited
        trace?.span("wait for gradients", category: "wait", since: start)
    }

    private func reduce(_ index: Int) {
        let bucket = plan.buckets[index]
        let start = MPIRuntime.wallTime()
        watchdog.waiting(for: "the all-reduce of gradient bucket \(index) (\(bucket.range.count * 4) bytes) at step \(stepNumber)") {
            allreducer.allreduce(UnsafeMutableBufferPointer(rebasing: gradients[bucket.range]), .average, algorithm: algorithm)
        }
        let seconds = MPIRuntime.wallTime() - start
        communicationSeconds += seconds  // one writer at a time: the comm thread, or main without overlap
        trace?.span("all-reduce bucket \(index)", category: "allreduce", track: overlap ? .communication : .compute,
                    since: start, arguments: ["bytes": "\(bucket.range.count * 4)", "step": "\(stepNumber)",
                                              "parameters": bucket.parameters.joined(separator: " ")])
    }

    private func communicationLoop() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty && stopping {
                condition.unlock()
                exited.signal()
                return
            }
            let index = queue.removeFirst()
            condition.unlock()

            reduce(index)

            condition.lock()
            reducedThisStep += 1
            if reducedThisStep == plan.buckets.count { condition.broadcast() }
            condition.unlock()
        }
    }
}
