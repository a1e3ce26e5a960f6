import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Who runs when among the fake ranks, and their virtual clocks.
///
/// Concurrent: every rank is a thread and the operating system interleaves them, as
/// with real processes. Stepped: exactly one rank runs at a time and control passes
/// only where a rank blocks (a receive not yet matched, a collective not yet
/// complete) or yields (`advance(by:)`, a `test` or `poll` that finds nothing, a
/// progress call), to the rank the order names. The interleaving is then a function
/// of the order alone, so a test of an asynchronous protocol is repeatable, and a
/// state in which no rank can run is reported as a deadlock naming what every rank
/// waits for, instead of hanging.
///
/// Virtual clocks: `advance(by:)` adds a rank's scripted compute time; a message
/// carries its sender's clock, and receiving it moves the receiver's clock to at
/// least that; a collective ends at its last member's clock. The `.virtualTime`
/// order runs the rank with the earliest clock next (ties: the lowest rank), which
/// makes a script of compute times a discrete-event simulation of the job.
///
/// Every method is called with the fabric's lock held.
final class Scheduler {
    enum State {
        case runnable
        case running
        case blocked(what: String, ready: () -> Bool)
        case finished
    }

    let stepped: Bool
    /// The fabric's lock and condition: a hand-off wakes the waiting ranks.
    private let condition: NSCondition
    private let order: InProcessGroup.StepOrder
    private var generator: UInt64
    private var state: [State]
    private var clocks: [Double]
    private var token: Int?
    private var owners: [pthread_t?]
    /// Waits in progress in concurrent mode, for hang reports.
    private var waits: [String?]
    /// The rank given control at each hand-off (stepped mode).
    private(set) var handOffs: [Int] = []

    init(size: Int, scheduling: InProcessGroup.Scheduling, condition: NSCondition) {
        self.condition = condition
        switch scheduling {
        case .concurrent:
            stepped = false
            order = .virtualTime
        case .stepped(let order):
            stepped = true
            self.order = order
        }
        if case .seeded(let seed) = order { generator = seed } else { generator = 0 }
        state = Array(repeating: .runnable, count: size)
        clocks = Array(repeating: 0, count: size)
        owners = Array(repeating: nil, count: size)
        waits = Array(repeating: nil, count: size)
    }

    // MARK: Clocks

    func clock(of rank: Int) -> Double { clocks[rank] }

    func advanceClock(of rank: Int, to time: Double) { clocks[rank] = max(clocks[rank], time) }

    func advance(_ rank: Int, by seconds: Double, on condition: NSCondition) {
        precondition(seconds >= 0, "a rank's clock cannot go back")
        clocks[rank] += seconds
        yield(rank, on: condition)
    }

    // MARK: Control

    /// Called before a rank's body starts (with every rank runnable): picks the first.
    func start() {
        if stepped { handOff() }
    }

    /// The calling thread is rank `rank`'s: wait for control (stepped mode).
    func begin(_ rank: Int, on condition: NSCondition) {
        guard stepped else { return }
        owners[rank] = pthread_self()
        while token != rank { condition.wait() }
    }

    func finish(_ rank: Int, on condition: NSCondition) {
        state[rank] = .finished
        if stepped { handOff() }
        condition.broadcast()
    }

    /// Returns when `ready()` holds, letting other ranks run meanwhile.
    func block(_ rank: Int, on condition: NSCondition, waitingFor what: String, until ready: @escaping () -> Bool) {
        guard stepped else {
            waits[rank] = what
            while !ready() { condition.wait() }
            waits[rank] = nil
            return
        }
        checkOwner(rank)
        if ready() { return }
        state[rank] = .blocked(what: what, ready: ready)
        handOff()
        while token != rank { condition.wait() }
    }

    /// Lets other ranks run; this one stays runnable.
    func yield(_ rank: Int, on condition: NSCondition) {
        guard stepped else { return }
        checkOwner(rank)
        state[rank] = .runnable
        handOff()
        while token != rank { condition.wait() }
    }

    private func checkOwner(_ rank: Int) {
        precondition(token == rank, "in-process rank \(rank) ran while rank \(token.map(String.init) ?? "none") had control")
        if let owner = owners[rank], pthread_equal(owner, pthread_self()) == 0 {
            fatalError("stepped scheduling runs one thread per rank, but rank \(rank) communicates from a second thread "
                       + "(run code with a communication thread, such as an overlapping gradient reducer, concurrently)")
        }
    }

    /// Gives control to the next rank the order names, or reports a deadlock.
    private func handOff() {
        let candidates = state.indices.filter { rank in
            switch state[rank] {
            case .runnable: true
            case .blocked(_, let ready): ready()
            case .running, .finished: false
            }
        }
        guard !candidates.isEmpty else {
            token = nil
            if state.contains(where: { if case .finished = $0 { false } else { true } }) {
                fatalError("in-process ranks deadlocked: " + describe())
            }
            return
        }
        let next: Int
        switch order {
        case .virtualTime:
            next = candidates.min { (clocks[$0], $0) < (clocks[$1], $1) }!
        case .seeded:
            next = candidates[Int(nextRandom() % UInt64(candidates.count))]
        }
        token = next
        state[next] = .running
        handOffs.append(next)
        condition.broadcast()
    }

    /// SplitMix64: a fixed sequence per seed.
    private func nextRandom() -> UInt64 {
        generator &+= 0x9E37_79B9_7F4A_7C15
        var z = generator
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// What every rank is doing, for deadlock and hang reports.
    func describe() -> String {
        state.indices.map { rank in
            let what: String
            switch state[rank] {
            case .runnable: what = waits[rank].map { "waiting for \($0)" } ?? "runnable"
            case .running: what = "running"
            case .blocked(let description, _): what = "waiting for \(description)"
            case .finished: what = "finished"
            }
            return "rank \(rank) \(what) (virtual time \(clocks[rank]))"
        }.joined(separator: "; ")
    }
}
