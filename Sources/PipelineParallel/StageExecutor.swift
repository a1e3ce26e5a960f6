import Communication
import Coordination
import NeuralNet
import PipelineSchedules

/// Runs one stage's actions for one batch, as its schedule lists them.
///
/// Every receive of the step is posted before the first action (activations for the
/// forwards, gradients for the backwards), into a buffer per micro-batch, and every
/// send is non-blocking; the sends are waited for at the end of the step. So a
/// transfer proceeds while the stage computes other micro-batches, and a stage blocks
/// only when the schedule needs a message that has not arrived.
///
/// Messages carry a micro-batch's activations (tag 2i) or gradients (tag 2i+1) as
/// raw floats; their sizes follow from the model and the micro-batch size, which
/// all ranks have agreed on before the first step.
final class StageExecutor {
    let runner: StageRunner
    let schedule: PipelineSchedule
    let stage: Int
    let pipeline: any Communicator
    let microbatch: Int
    let loss: any LossFunction
    let trace: TraceRecorder?
    let watchdog: Watchdog?
    /// Most micro-batches (and bytes) of saved activations held at once so far.
    private(set) var peakStoredMicrobatches = 0
    private(set) var peakStoredBytes = 0

    init(runner: StageRunner, schedule: PipelineSchedule, stage: Int, pipeline: any Communicator, microbatch: Int,
         loss: any LossFunction, trace: TraceRecorder?, watchdog: Watchdog? = nil) {
        self.runner = runner
        self.schedule = schedule
        self.stage = stage
        self.pipeline = pipeline
        self.microbatch = microbatch
        self.loss = loss
        self.trace = trace
        self.watchdog = watchdog
    }

    struct StepResult {
        /// This stage's share of the batch loss (non-zero on the last stage only).
        var loss = 0.0
        /// Seconds spent in forwards and in backwards; the rest of the step is idle.
        var forwardSeconds = 0.0, backwardSeconds = 0.0
        var busySeconds: Double { forwardSeconds + backwardSeconds }
    }

    func runStep(images: Tensor, labels: [Int32], step: Int) -> StepResult {
        let last = stage == schedule.stages - 1, first = stage == 0
        let m = schedule.microbatches, b = microbatch
        let inputCount = b * runner.inputShape.reduce(1, *), outputCount = b * runner.outputShape.reduce(1, *)
        let program = schedule.actions[stage]

        var incoming: [PipelineAction: (buffer: MessageBuffer<Float>, request: any Transfer)] = [:]
        for action in program {
            switch action {
            case .receiveActivation(let i):
                let buffer = MessageBuffer<Float>(count: inputCount, repeating: 0)
                incoming[action] = (buffer, pipeline.startReceive(into: buffer, from: stage - 1, tag: 2 * i))
            case .receiveGradient(let i):
                let buffer = MessageBuffer<Float>(count: outputCount, repeating: 0)
                incoming[action] = (buffer, pipeline.startReceive(into: buffer, from: stage + 1, tag: 2 * i + 1))
            default:
                break
            }
        }

        var inputs: [Int: Tensor] = [:], outputs: [Int: Tensor] = [:], outputGradients: [Int: Tensor] = [:]
        var inputGradients: [Int: Tensor] = [:], tapes: [Int: [Saved]] = [:]
        var sends: [any Transfer] = []
        var result = StepResult()
        var held = 0, heldBytes = 0

        func received(_ action: PipelineAction, _ what: String, from peer: Int, shape: [Int]) -> Tensor {
            let start = MonotonicClock.seconds()
            let (buffer, request) = incoming.removeValue(forKey: action)!
            watchdog.waiting(for: "micro-batch \(action.microbatch)'s \(what) from stage \(peer) at step \(step)") { request.wait() }
            trace?.span("wait \(action)", category: "wait", since: start)
            return Tensor(shape: [b] + shape, storage: buffer.array)
        }

        for action in program {
            switch action {
            case .receiveActivation(let i):
                inputs[i] = received(action, "activations", from: stage - 1, shape: runner.inputShape)
            case .receiveGradient(let i):
                outputGradients[i] = received(action, "gradients", from: stage + 1, shape: runner.outputShape)
            case .forward(let i):
                let start = MonotonicClock.seconds()
                let x = first ? images.items((i * b)..<((i + 1) * b)) : inputs.removeValue(forKey: i)!
                let (y, saved) = runner.forward(x)
                if last {
                    var (microLoss, gradient) = loss.lossAndGradient(logits: y, labels: Array(labels[(i * b)..<((i + 1) * b)]))
                    // The mean over M micro-batch means is the mean over the batch.
                    gradient.scale(by: 1 / Float(m))
                    result.loss += microLoss / Double(m)
                    outputGradients[i] = gradient
                } else {
                    outputs[i] = y
                }
                tapes[i] = saved
                held += 1
                heldBytes += saved.reduce(0) { $0 + $1.byteCount }
                peakStoredMicrobatches = max(peakStoredMicrobatches, held)
                peakStoredBytes = max(peakStoredBytes, heldBytes)
                result.forwardSeconds += MonotonicClock.seconds() - start
                trace?.span("F\(i)", category: "forward", since: start)
            case .backward(let i):
                let start = MonotonicClock.seconds()
                let saved = tapes.removeValue(forKey: i)!
                let gradient = runner.backward(outputGradients.removeValue(forKey: i)!, saved: saved, needInputGradient: !first)
                if !first { inputGradients[i] = gradient }
                held -= 1
                heldBytes -= saved.reduce(0) { $0 + $1.byteCount }
                result.backwardSeconds += MonotonicClock.seconds() - start
                trace?.span("B\(i)", category: "backward", since: start)
            case .sendActivation(let i):
                sends.append(pipeline.startSend(MessageBuffer(outputs.removeValue(forKey: i)!.storage), to: stage + 1, tag: 2 * i))
            case .sendGradient(let i):
                sends.append(pipeline.startSend(MessageBuffer(inputGradients.removeValue(forKey: i)!.storage), to: stage - 1, tag: 2 * i + 1))
            }
        }
        let start = MonotonicClock.seconds()
        let peers = [stage - 1, stage + 1].filter { (0..<schedule.stages).contains($0) }.map(String.init)
        watchdog.waiting(for: "the sends of step \(step) to stage \(peers.joined(separator: " and ")) to complete") {
            for send in sends { send.wait() }
        }
        if !sends.isEmpty { trace?.span("wait for sends", category: "wait", since: start) }
        return result
    }
}
