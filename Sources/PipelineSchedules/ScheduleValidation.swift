import Foundation

/// A schedule that cannot run as written.
public struct ScheduleError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension PipelineSchedule {
    /// Checks that the schedule can run: every stage forwards and backwards each
    /// micro-batch exactly once and in that order, receives before it computes and
    /// computes before it sends, every send has the matching receive on the neighbour
    /// (and nothing else is sent or received), and no stage waits for a message that
    /// is never sent (checked by running it, see `simulate`).
    public func validate() throws {
        let m = microbatches
        for (s, program) in actions.enumerated() {
            func position(_ action: PipelineAction) throws -> Int {
                let found = program.indices.filter { program[$0] == action }
                guard found.count == 1 else {
                    throw ScheduleError("stage \(s) has \(found.count) \(action) actions, expected 1")
                }
                return found[0]
            }
            func before(_ a: PipelineAction, _ b: PipelineAction) throws {
                guard try position(a) < position(b) else { throw ScheduleError("stage \(s) runs \(b) before \(a)") }
            }
            var expected = 0
            for i in 0..<m {
                try before(.forward(i), .backward(i))
                expected += 2
                if s > 0 {
                    try before(.receiveActivation(i), .forward(i))
                    try before(.backward(i), .sendGradient(i))
                    expected += 2
                }
                if s < stages - 1 {
                    try before(.forward(i), .sendActivation(i))
                    try before(.receiveGradient(i), .backward(i))
                    expected += 2
                }
            }
            guard program.count == expected else {
                throw ScheduleError("stage \(s) has \(program.count) actions, expected \(expected) (a stray send or receive?)")
            }
        }
        _ = try simulate()
    }

    /// One compute action placed in time.
    public struct Slot: Equatable, Sendable {
        public let action: PipelineAction
        public let start: Int
        public let duration: Int
    }

    /// Runs the schedule with unit-time forwards and backwards (`backwardCost` ticks)
    /// and free communication: sends never block, a receive waits until its message
    /// was sent. Returns each stage's compute slots; throws if some stage waits for
    /// a message that never comes (deadlock).
    public func simulate(forwardCost: Int = 1, backwardCost: Int = 1) throws -> [[Slot]] {
        try place { _, action in action.isForward ? forwardCost : backwardCost }
            .map { $0.map { Slot(action: $0.action, start: $0.start, duration: $0.duration) } }
    }

    /// How long the schedule takes when stage s's forward of a micro-batch takes
    /// `forward[s]` and its backward `backward[s]` (any unit), with free
    /// communication: the pipeline's time with no overhead, for stages as unequal as
    /// they are.
    public func makespan(forward: [Double], backward: [Double]) throws -> Double {
        precondition(forward.count == stages && backward.count == stages, "one forward and one backward time per stage")
        let slots = try place { s, action in action.isForward ? forward[s] : backward[s] }
        return slots.flatMap { $0 }.map { $0.start + $0.duration }.max() ?? 0
    }

    /// The idle fraction of the schedule for those stage times (see `makespan`):
    /// 1 − M·Σ(forward + backward) / (S · makespan). For equal stages and equal
    /// forward and backward times it is `theoreticalBubble`; for unequal stages the
    /// fastest ones wait on the slowest however well the schedule interleaves.
    public func bubble(forward: [Double], backward: [Double]) throws -> Double {
        let span = try makespan(forward: forward, backward: backward)
        let work = Double(microbatches) * zip(forward, backward).reduce(0) { $0 + $1.0 + $1.1 }
        return span > 0 ? 1 - work / (Double(stages) * span) : 0
    }

    /// A message in flight: to which stage, for which micro-batch.
    private enum Channel: Hashable { case activation(to: Int, Int), gradient(to: Int, Int) }

    /// The simulation behind `simulate` and `makespan`, for any cost per stage and action.
    private func place<Time: Numeric & Comparable>(cost: (Int, PipelineAction) -> Time) throws
        -> [[(action: PipelineAction, start: Time, duration: Time)]] {
        var sentAt: [Channel: Time] = [:]
        var next = [Int](repeating: 0, count: stages)
        var clock = [Time](repeating: .zero, count: stages)
        var slots = [[(action: PipelineAction, start: Time, duration: Time)]](repeating: [], count: stages)
        while next.enumerated().contains(where: { $0.element < actions[$0.offset].count }) {
            var progressed = false
            for s in 0..<stages {
                while next[s] < actions[s].count {
                    let action = actions[s][next[s]]
                    switch action {
                    case .receiveActivation(let i), .receiveGradient(let i):
                        let channel: Channel = if case .receiveActivation = action { .activation(to: s, i) } else { .gradient(to: s, i) }
                        guard let sent = sentAt[channel] else { break }
                        clock[s] = max(clock[s], sent)
                    case .sendActivation(let i):
                        sentAt[.activation(to: s + 1, i)] = clock[s]
                    case .sendGradient(let i):
                        sentAt[.gradient(to: s - 1, i)] = clock[s]
                    case .forward, .backward:
                        let duration = cost(s, action)
                        slots[s].append((action, clock[s], duration))
                        clock[s] += duration
                    }
                    if case .receiveActivation = action, sentAt[.activation(to: s, action.microbatch)] == nil { break }
                    if case .receiveGradient = action, sentAt[.gradient(to: s, action.microbatch)] == nil { break }
                    next[s] += 1
                    progressed = true
                }
            }
            if !progressed {
                let stuck = (0..<stages).filter { next[$0] < actions[$0].count }.map { "stage \($0) at \(actions[$0][next[$0]])" }
                throw ScheduleError("deadlock: " + stuck.joined(separator: ", ") + " wait for messages never sent")
            }
        }
        return slots
    }

    /// The schedule as a time x stage grid (unit-time forwards and backwards):
    ///
    ///     stage 0 | F0 F1 F2 .. .. B0 B1 B2
    public func grid() -> String {
        guard let slots = try? simulate() else { return "(invalid schedule)" }
        let end = slots.flatMap { $0 }.map { $0.start + $0.duration }.max() ?? 0
        let width = max(3, "B\(microbatches - 1)".count + 1)
        func cell(_ text: String) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        var lines = ["\(kind.rawValue), \(stages) stages, \(microbatches) micro-batches "
                     + "(bubble (S-1)/(M+S-1) = \(String(format: "%.3f", theoreticalBubble)))"]
        lines.append("time    |" + (0..<end).map { cell("\($0)") }.joined())
        for (s, stageSlots) in slots.enumerated() {
            var row = [String](repeating: cell("."), count: end)
            for slot in stageSlots { for t in slot.start..<(slot.start + slot.duration) { row[t] = cell(slot.action.description) } }
            lines.append("stage \(s) |" + row.joined())
        }
        return lines.joined(separator: "\n")
    }
}

extension PipelineAction {
    var isForward: Bool {
        if case .forward = self { return true }
        return false
    }
}
