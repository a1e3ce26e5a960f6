/// What one pipeline stage does, in order, for one batch of M micro-batches.
public enum PipelineAction: Hashable, Sendable, CustomStringConvertible {
    /// Receive micro-batch i's activations from the previous stage.
    case receiveActivation(Int)
    /// Run this stage's layers forward on micro-batch i (the last stage adds the loss).
    case forward(Int)
    /// Send micro-batch i's output activations to the next stage.
    case sendActivation(Int)
    /// Receive the gradient of micro-batch i's output from the next stage.
    case receiveGradient(Int)
    /// Run this stage's layers backward on micro-batch i, accumulating parameter gradients.
    case backward(Int)
    /// Send the gradient of micro-batch i's input to the previous stage.
    case sendGradient(Int)

    public var microbatch: Int {
        switch self {
        case .receiveActivation(let i), .forward(let i), .sendActivation(let i),
             .receiveGradient(let i), .backward(let i), .sendGradient(let i): i
        }
    }

    public var isCompute: Bool {
        switch self {
        case .forward, .backward: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .receiveActivation(let i): "recvA\(i)"
        case .forward(let i): "F\(i)"
        case .sendActivation(let i): "sendA\(i)"
        case .receiveGradient(let i): "recvG\(i)"
        case .backward(let i): "B\(i)"
        case .sendGradient(let i): "sendG\(i)"
        }
    }
}

/// The schedules `pipe-train` can run.
public enum ScheduleKind: String, CaseIterable, Sendable {
    /// GPipe: every micro-batch forward, then every micro-batch backward. Stage s
    /// holds the activations of all M micro-batches at once.
    case gpipe
    /// One forward, one backward (PipeDream-Flush): S−s−1 warm-up forwards, then
    /// alternate, then drain. The same bubble as GPipe, but stage s holds at most
    /// S − s micro-batches of activations.
    case oneFOneB = "1f1b"
}

/// A schedule as data: each stage's ordered actions for one batch. A pure function of
/// (kind, stages, micro-batches), so it can be printed, validated and tested without
/// running anything.
public struct PipelineSchedule: Equatable, Sendable {
    public let kind: ScheduleKind
    public let stages: Int
    public let microbatches: Int
    /// `actions[s]`: stage s's program.
    public let actions: [[PipelineAction]]

    public init(_ kind: ScheduleKind, stages: Int, microbatches: Int) {
        precondition(stages >= 1 && microbatches >= 1)
        self.kind = kind
        self.stages = stages
        self.microbatches = microbatches
        actions = (0..<stages).map { s in
            let first = s == 0, last = s == stages - 1
            func forward(_ i: Int) -> [PipelineAction] {
                (first ? [] : [.receiveActivation(i)]) + [.forward(i)] + (last ? [] : [.sendActivation(i)])
            }
            func backward(_ i: Int) -> [PipelineAction] {
                (last ? [] : [.receiveGradient(i)]) + [.backward(i)] + (first ? [] : [.sendGradient(i)])
            }
            switch kind {
            case .gpipe:
                return (0..<microbatches).flatMap(forward) + (0..<microbatches).flatMap(backward)
            case .oneFOneB:
                let warmup = min(stages - s - 1, microbatches)
                var program = (0..<warmup).flatMap(forward)
                for j in 0..<(microbatches - warmup) {
                    program += forward(warmup + j) + backward(j)
                }
                program += ((microbatches - warmup)..<microbatches).flatMap(backward)
                return program
            }
        }
    }

    /// A schedule with hand-written programs (for testing the validator).
    init(copying other: PipelineSchedule, actions: [[PipelineAction]]) {
        kind = other.kind
        stages = other.stages
        microbatches = other.microbatches
        self.actions = actions
    }

    /// Most micro-batches whose activations stage s holds at once (forwarded, not yet
    /// backwarded): M for GPipe, min(S − s, M) for 1F1B.
    public func peakStoredMicrobatches(stage s: Int) -> Int {
        var held = 0, peak = 0
        for action in actions[s] {
            if case .forward = action { held += 1; peak = max(peak, held) }
            if case .backward = action { held -= 1 }
        }
        return peak
    }

    /// The idle fraction of an ideal run (every forward and backward one unit, free
    /// communication): (S − 1) / (M + S − 1) for both schedules.
    public var theoreticalBubble: Double {
        Double(stages - 1) / Double(microbatches + stages - 1)
    }
}
