import Communication
import Persistence

/// What the hook's work cost and saved, summed over the run.
///
/// Written by whichever thread runs the hook and read by the main thread between
/// steps; the reducer's hand-over at the end of each step orders the two (as for
/// the gradients themselves).
public final class HookMeter: @unchecked Sendable {
    public internal(set) var compressSeconds = 0.0
    public internal(set) var decompressSeconds = 0.0
    /// Bytes the hook handed to collectives on this rank (its compressed payload).
    public internal(set) var payloadBytes = 0
    /// Float32 bytes of the buckets it was given: what averaging would send.
    public internal(set) var gradientBytes = 0

    public init() {}

    /// Records that a bucket of `bytes` float32 gradient bytes was handed to the hook.
    public func record(gradientBytes bytes: Int) { gradientBytes += bytes }

}

extension HookMeter {
    /// The meter's figures as metrics: means over `group`'s ranks per communicating
    /// step, with `bytesSent` the messages this rank sent for its gradients (ranks can
    /// differ: a pipeline's stages hold different layers), and the ratio of all
    /// ranks' gradient bytes to all their payload.
    public func report(into metrics: inout Metrics, bytesSent: Int, steps: Int, over group: any Communicator) {
        let steps = Double(max(steps, 1)), ranks = Double(group.size)
        let payload = group.allreduce(Double(payloadBytes), op: .sum), gradients = group.allreduce(Double(gradientBytes), op: .sum)
        metrics["bytes_sent_per_step"] = group.allreduce(Double(bytesSent), op: .sum) / ranks / steps
        metrics["payload_bytes_per_step"] = payload / ranks / steps
        metrics["compression_ratio"] = payload > 0 ? gradients / payload : 1
        metrics["compress_seconds"] = group.allreduce(compressSeconds, op: .sum) / ranks
        metrics["decompress_seconds"] = group.allreduce(decompressSeconds, op: .sum) / ranks
    }
}
