import Foundation
import Coordination
import Persistence

/// What the rounds did, counted on every rank alike (every rank sees every round's
/// plan and sums). Bytes are the federated protocol's: the global model sent to each
/// asked client, each report sent back; not the MPI traffic of the simulation.
struct FederatedMeasurements {
    var rounds = 0
    var asked = 0
    var reported = 0
    var dropped = 0
    /// Of the dropped, those past the deadline; reporting clients cut short (FedProx).
    var late = 0
    var partial = 0
    /// The rounds' simulated time (`ClientTiming`).
    var simulatedTime = 0.0
    var emptyRounds = 0
    var bytesDown = 0
    var bytesUp = 0
    var clipped = 0
    /// Samples through the clients' forward and backward passes (samples x local epochs).
    var clientSamples = 0
    var largestErrorBound = 0.0
    var roundsToTarget: Int?
    var lastRound: String?

    mutating func record(_ plan: RoundPlan, _ aggregate: RoundAggregate, processed: Int, uploadBytes: Int, downloadBytes: Int,
                         partial: Int, roundTime: Double) {
        rounds += 1
        late += plan.late.count
        self.partial += partial
        simulatedTime += roundTime
        clientSamples += processed
        asked += plan.asked.count
        reported += plan.reporting.count
        dropped += plan.dropped
        if plan.reporting.isEmpty { emptyRounds += 1 }
        bytesDown += plan.asked.count * downloadBytes
        bytesUp += plan.reporting.count * uploadBytes
        clipped += aggregate.clipped
        largestErrorBound = max(largestErrorBound, aggregate.errorBound)
        lastRound = "clients \(plan.reporting.count)/\(plan.asked.count), sent \(Formatting.bytes(bytesDown + bytesUp))"
    }

    func report(into metrics: inout Metrics) {
        metrics["rounds_run"] = rounds
        metrics["client_samples"] = clientSamples
        metrics["clients_asked"] = asked
        metrics["clients_reported"] = reported
        metrics["dropped_clients"] = dropped
        metrics["late_clients"] = late
        metrics["partial_clients"] = partial
        metrics["simulated_time"] = simulatedTime
        metrics["empty_rounds"] = emptyRounds
        metrics["bytes_down"] = bytesDown
        metrics["bytes_up"] = bytesUp
        metrics["rounds_to_target"] = roundsToTarget.map { $0 as Any } ?? NSNull()
        metrics["secure_clipped_values"] = clipped
        metrics["secure_error_bound"] = largestErrorBound
    }
}
