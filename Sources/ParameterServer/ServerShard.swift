import Collectives
import Communication
import Coordination
import NeuralNet

/// One server: its range of the parameters and of the optimizer state, the workers'
/// clocks as it has seen them, and the loop that serves every worker's push-pull
/// from one place (`waitAny` over a receive per worker), blocking on a slow worker
/// only where the consistency model says a read must wait for it.
///
/// Updates are coalesced until a read needs them: when one or more reads become
/// admissible, the gradients that arrived since the last optimizer step (at most one
/// per worker, since a worker waits for its reply before pushing again) are summed in
/// worker order, scaled by 1/W, and applied in one optimizer step, then every
/// admissible read is answered. Under BSP that is exactly synchronous data
/// parallelism's step (the average of the clock's W gradients); under ASP each push
/// is its own step, scaled by 1/W so the learning rate means what it means in BSP.
/// Cost per push: one receive of the range, one sum into the step's gradient; per
/// step: one optimizer pass over the range; per reply: one copy and one send.
final class ServerShard {
    let parameters: FlatParameters
    let optimizer: Optimizer
    let consistency: ConsistencyModel
    private(set) var clocks: ClockTable
    /// Pushes received (skipped ones included), since the run began.
    private(set) var pushes = 0
    /// Pushes whose gradient was not finite and was left out.
    private(set) var skippedPushes = 0
    private(set) var optimizerSteps = 0
    /// The most stale read this server has answered.
    private(set) var maxStaleness = 0
    private(set) var busySeconds = 0.0
    private(set) var servingSeconds = 0.0
    private(set) var bytesReceived = 0
    private(set) var bytesSent = 0

    private let channel: any Communicator
    private let workerRanks: [Int]
    /// Server 0 decides when workers pause; the others learn it from pause notices.
    private let decidesPauses: Bool
    private let name: String
    private let inbox: [MessageBuffer<Float>]
    private let outbox: [MessageBuffer<Float>]
    private var receives: [(any Transfer)?]
    private var sends: [(any Transfer)?]
    /// Worker w's gradient waits in `inbox[w]` to be applied.
    private var pending: [Bool]
    /// Worker w waits for the reply to its read at `clocks[w]`.
    private var reading: [Bool]
    private var paused: [Bool]
    private var lossSum = 0.0
    private var lossCount = 0
    private var lastMeanLoss = Double.nan

    /// `workerRanks[w]` is worker w's rank in `channel`.
    init(index: Int, parameters: FlatParameters, optimizer: Optimizer, consistency: ConsistencyModel,
         channel: any Communicator, workerRanks: [Int]) {
        self.parameters = parameters
        self.optimizer = optimizer
        self.consistency = consistency
        self.channel = channel
        self.workerRanks = workerRanks
        decidesPauses = index == 0
        name = "server \(index)"
        let workers = workerRanks.count
        inbox = (0..<workers).map { _ in MessageBuffer(count: parameters.count + PushPull.Push.trailer, repeating: 0) }
        outbox = (0..<workers).map { _ in MessageBuffer(count: parameters.count + PushPull.Reply.trailer, repeating: 0) }
        receives = Array(repeating: nil, count: workers)
        sends = Array(repeating: nil, count: workers)
        pending = Array(repeating: false, count: workers)
        reading = Array(repeating: false, count: workers)
        paused = Array(repeating: false, count: workers)
        clocks = ClockTable(workers: workers)
    }

    var workers: Int { workerRanks.count }

    /// Where the run starts (0, or a resumed step): every worker at that clock.
    func start(atStep step: Int) {
        clocks = ClockTable(workers: workers, startingAt: step)
        pushes = step * workers
    }

    /// Serves until `pushes` reaches `target`; or, when the loop synchronises after
    /// this step, until every worker has paused: server 0 pauses each worker at its
    /// first admissible read once `target` is reached (under a bound S, only once the
    /// worker is within S clocks of the fastest, so the run ends with the workers at
    /// most S apart), and the other servers wait for every worker's notice.
    func serve(untilPushes target: Int, synchronizing: Bool, watchdog: Watchdog?, step: Int) {
        let began = MonotonicClock.seconds()
        defer { servingSeconds += MonotonicClock.seconds() - began }
        func done() -> Bool { synchronizing ? !paused.contains(false) : pushes >= target }
        while !done() {
            // A worker sends again only once answered, and not at all once paused.
            for w in 0..<workers where receives[w] == nil && !reading[w] && !paused[w] {
                receives[w] = channel.startReceive(into: inbox[w], from: workerRanks[w], tag: Wildcard.anyTag)
            }
            let posted = (0..<workers).filter { receives[$0] != nil }
            // Every worker paused before this server's count reached the step's: a
            // worker paused without having pushed to every server.
            if posted.isEmpty { channel.abort("\(name): every worker has paused at \(pushes) pushes, short of \(target)") }
            let which = watchdog.waiting(for: "\(name) waiting for pushes (step \(step + 1))") {
                channel.waitAny(posted.map { receives[$0]! })
            }
            let handling = MonotonicClock.seconds()
            let w = posted[which]
            let status = receives[w]!.status!
            receives[w] = nil
            if status.tag == PushPull.pauseNoticeTag {
                paused[w] = true
            } else {
                accept(push: status, from: w)
                answerAdmissibleReads(pauseAt: synchronizing && pushes >= target)
            }
            busySeconds += MonotonicClock.seconds() - handling
        }
        for w in 0..<workers { sends[w]?.wait(); sends[w] = nil }
        // A notice may come before this server reaches the synchronising step (it
        // lags server 0); it counts towards that step, so pauses are only cleared here.
        if synchronizing { for w in 0..<workers { paused[w] = false } }
    }

    /// The mean loss the pushes since the last call carried (the last mean when
    /// none came: a step whose pushes all arrived during the step before).
    func meanLoss() -> Double {
        if lossCount > 0 { lastMeanLoss = lossSum / Double(lossCount) }
        lossSum = 0
        lossCount = 0
        return lastMeanLoss
    }

    private func accept(push status: MessageStatus, from w: Int) {
        let expected = parameters.count + PushPull.Push.trailer
        guard status.tag == PushPull.tag(clock: clocks.clocks[w]), status.count(of: Float.self) == expected else {
            channel.abort("\(name): worker \(w) sent \(status.count(of: Float.self)) values with tag \(status.tag), "
                          + "expected a push of \(expected) for clock \(clocks.clocks[w]) (tag \(PushPull.tag(clock: clocks.clocks[w])))")
        }
        bytesReceived += status.byteCount
        let trailer = inbox[w].pointer[parameters.count...]
        lossSum += Double(trailer[trailer.startIndex + PushPull.Push.loss])
        lossCount += 1
        if trailer[trailer.startIndex + PushPull.Push.skipped] != 0 { skippedPushes += 1 } else { pending[w] = true }
        pushes += 1
        clocks.tick(w)
        reading[w] = true
    }

    private func answerAdmissibleReads(pauseAt synchronizing: Bool) {
        let slowest = clocks.slowest
        let admitted = (0..<workers).filter { reading[$0] && consistency.admitsRead(at: clocks.clocks[$0], slowest: slowest) }
        guard !admitted.isEmpty else { return }
        applyPendingUpdates()
        for w in admitted {
            var verdict = Verdict.proceed
            // A laggard more than S behind the fastest catches up before it pauses.
            if decidesPauses && synchronizing && consistency.bound.map({ clocks.clocks[w] >= clocks.fastest - $0 }) ?? true {
                verdict = .pause
                paused[w] = true
            }
            reply(to: w, verdict: verdict)
        }
    }

    /// One optimizer step with the average contribution of every gradient waiting.
    private func applyPendingUpdates() {
        let waiting = (0..<workers).filter { pending[$0] }
        guard !waiting.isEmpty else { return }
        let n = parameters.count
        let sum = parameters.gradients
        sum.update(repeating: 0)
        for w in waiting {
            Float.add(UnsafeBufferPointer(rebasing: inbox[w].pointer[0..<n]), into: sum, scale: 1)
            pending[w] = false
        }
        Float.scale(sum, by: Float.reciprocal(of: workers))
        optimizer.step(values: parameters.values, gradients: sum)
        optimizerSteps += 1
    }

    private func reply(to w: Int, verdict: Verdict) {
        sends[w]?.wait()
        let n = parameters.count, message = outbox[w].pointer
        _ = UnsafeMutableBufferPointer(rebasing: message[0..<n]).update(fromContentsOf: parameters.values)
        message[n + PushPull.Reply.verdict] = verdict.rawValue
        message[n + PushPull.Reply.globalStep] = Float(pushes / workers)
        message[n + PushPull.Reply.staleness] = Float(clocks.staleness(of: w))
        maxStaleness = max(maxStaleness, clocks.staleness(of: w))
        reading[w] = false
        sends[w] = channel.startSend(outbox[w], to: workerRanks[w], tag: PushPull.tag(clock: clocks.clocks[w]))
        bytesSent += outbox[w].count * MemoryLayout<Float>.stride
    }
}
