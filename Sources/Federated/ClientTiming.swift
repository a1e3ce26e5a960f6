import NeuralNet

/// A fraction of the clients that run slower than the rest.
public struct SlowClients: Sendable, Equatable, CustomStringConvertible {
    /// F: the share of the clients that are slow.
    public var fraction: Double
    /// X: how many times longer a slow client takes for the same work.
    public var slowdown: Double

    public init(fraction: Double, slowdown: Double) {
        self.fraction = fraction
        self.slowdown = slowdown
    }

    public var description: String { "\(fraction) of the clients \(slowdown)x slower" }
}

/// What a client gets done in a round against the deadline.
enum ClientWork: Equatable {
    /// All its local steps, in this much simulated time.
    case complete(time: Double)
    /// Only the first `steps` of them fit before the deadline (kept: FedProx).
    case partial(steps: Int)
    /// It would miss the deadline and reports nothing (FedAvg drops it).
    case late
}

/// System heterogeneity on a simulated clock. Clients run one after another on the
/// ranks, so real time says nothing about a client's speed; instead a client's local
/// training takes  time = samples processed × slowdown / mean client size,  so a
/// normal-speed client of the mean size needs 1 unit per local epoch, and the round
/// deadline is in those units (a deadline of 5 lets a mean-size client at normal speed
/// finish E = 5 epochs). Which clients are slow is fixed for the run (a property
/// of the device), drawn from the run's seed: every rank, every resumed run and every
/// rank count sees the same stragglers, so the model does not depend on where they ran:
/// a share F > 0 makes at least one client slow.
///
/// Past the deadline FedAvg drops the late clients (they count as not reporting), and
/// FedProx keeps the steps they finished (Li et al. 2020, "partial work"); a client
/// that finished no step reports nothing in either.
struct ClientTiming {
    let sizes: [Int]
    let epochs: Int
    /// 0: the client's whole data in one batch.
    let batch: Int
    let deadline: Double?
    let keepsPartialWork: Bool
    let slowdowns: [Double]
    let slowClients: Int
    /// The samples a normal-speed client processes in one unit of time.
    let unitSamples: Double
    /// Each client's work against the deadline: fixed for the run, so computed once.
    private(set) var works: [ClientWork] = []

    init(sizes: [Int], epochs: Int, batch: Int, slow: SlowClients?, deadline: Double?, keepsPartialWork: Bool, seed: UInt64) {
        self.sizes = sizes
        self.epochs = epochs
        self.batch = batch
        self.deadline = deadline
        self.keepsPartialWork = keepsPartialWork
        unitSamples = Double(sizes.reduce(0, +)) / Double(max(sizes.count, 1))
        var slowdowns = [Double](repeating: 1, count: sizes.count)
        var count = 0
        if let slow {
            var generator = SeededGenerator(seed: seed, stream: 0xFED0_3000)
            count = max(Int((slow.fraction * Double(sizes.count)).rounded()), 1)
            for client in Array(0..<sizes.count).shuffled(using: &generator).prefix(count) { slowdowns[client] = slow.slowdown }
        }
        self.slowdowns = slowdowns
        slowClients = count
        works = sizes.indices.map(computeWork)
    }

    /// The simulated time `client` needs for its first `steps` local steps (all of them when nil).
    func time(client: Int, steps: Int? = nil) -> Double {
        Double(samples(client: client, steps: steps ?? stepsPerEpoch(client) * epochs)) * slowdowns[client] / unitSamples
    }

    func work(client: Int) -> ClientWork { works[client] }

    private func computeWork(client: Int) -> ClientWork {
        let full = time(client: client)
        // A relative slack, so work that fits exactly (samples x slowdown = deadline x mean) fits.
        guard let limit = deadline.map({ $0 * (1 + 1e-12) }), full > limit else { return .complete(time: full) }
        guard keepsPartialWork else { return .late }
        // The steps whose samples fit: the first k with time(k) <= deadline.
        let perEpoch = stepsPerEpoch(client)
        var steps = 0
        while steps < perEpoch * epochs && time(client: client, steps: steps + 1) <= limit { steps += 1 }
        return steps > 0 ? .partial(steps: steps) : .late
    }

    /// The steps a reporting client runs: nil for all of them.
    func stepLimit(client: Int) -> Int? {
        if case .partial(let steps) = work(client: client) { return steps }
        return nil
    }

    /// Samples a reporting client passes through forward and backward in the round.
    func processedSamples(client: Int) -> Int {
        samples(client: client, steps: stepLimit(client: client) ?? stepsPerEpoch(client) * epochs)
    }

    /// How long the server waits for the round: until the last reporting client is done,
    /// or the deadline when one was missed or an asked client never answered.
    func roundTime(_ plan: RoundPlan) -> Double {
        let finished = plan.reporting.map { client -> Double in
            if case .complete(let time) = work(client: client) { return time }
            return deadline!
        }.max() ?? 0
        if let deadline, plan.dropped > 0 { return deadline }
        return finished
    }

    private func stepsPerEpoch(_ client: Int) -> Int {
        batch == 0 ? 1 : (sizes[client] + batch - 1) / batch
    }

    /// Samples in the first `steps` local steps: whole epochs, then whole batches and the
    /// epoch's last, shorter one.
    private func samples(client: Int, steps: Int) -> Int {
        let size = sizes[client], perEpoch = stepsPerEpoch(client)
        guard perEpoch > 0 else { return 0 }
        let epochs = steps / perEpoch, rest = steps % perEpoch
        return epochs * size + (batch == 0 ? rest * size : min(rest * batch, size))
    }
}
