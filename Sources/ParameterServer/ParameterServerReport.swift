import Communication
import Coordination
import Foundation
import Persistence

/// The parameter server's own metrics, gathered from every rank (collective): what
/// each worker did and waited, what the reads saw, how busy the servers were.
struct ParameterServerReport {
    let strategy: ParameterServerStrategy
    let shard: ServerShard?
    let worker: WorkerState?
    let communicator: any Communicator

    func write(into metrics: inout Metrics) -> String {
        let options = strategy.options, servers = options.servers
        let iterations = communicator.allgather(Int64(worker?.iterations ?? 0)).dropFirst(servers).map { Int($0) }
        let blocked = Array(communicator.allgather(worker?.channel.blockedSeconds ?? 0).dropFirst(servers))
        let straggled = Array(communicator.allgather(worker?.straggledSeconds ?? 0).dropFirst(servers))
        let busy = communicator.allgather(shard.map { $0.servingSeconds > 0 ? $0.busySeconds / $0.servingSeconds : 0 } ?? 0)
            .prefix(servers).map { $0 }
        let histogram = sum(worker?.channel.staleness.counts ?? [])
        let pushed = communicator.allreduce(Int64(worker?.channel.bytesPushed ?? 0), op: .sum)
        let pulled = communicator.allreduce(Int64(worker?.channel.bytesPulled ?? 0), op: .sum)
        // Server 0's counts (every server sees every push).
        var zero = [Int64(shard?.pushes ?? 0), Int64(shard?.optimizerSteps ?? 0), Int64(shard?.skippedPushes ?? 0)]
        zero.withUnsafeMutableBufferPointer { communicator.broadcast($0, root: 0) }
        let (counts, steps, skipped) = (zero[0], zero[1], zero[2])
        let maximum = StalenessHistogram(counts: histogram).maximum

        metrics["mode"] = options.consistency.name
        metrics["staleness_bound"] = options.consistency.bound.map { $0 as Any } ?? NSNull()
        metrics["servers"] = servers
        metrics["workers"] = iterations.count
        metrics["batch_per_worker"] = options.batchPerWorker
        metrics["stragglers"] = options.stragglers.description
        metrics["max_staleness"] = maximum
        metrics["staleness_histogram"] = histogram
        metrics["worker_iterations"] = iterations
        metrics["blocked_seconds"] = blocked
        metrics["straggled_seconds"] = straggled
        metrics["server_busy_fraction"] = busy
        metrics["pushes"] = Int(counts)
        metrics["server_optimizer_steps"] = Int(steps)
        metrics["skipped_pushes"] = Int(skipped)
        metrics["bytes_pushed"] = Int(pushed)
        metrics["bytes_pulled"] = Int(pulled)
        let meanBlocked = blocked.reduce(0, +) / Double(max(blocked.count, 1))
        return "\(options.consistency): max staleness \(maximum), iterations per worker "
            + iterations.map(String.init).joined(separator: "/")
            + ", workers blocked \(Formatting.decimals(meanBlocked, 2)) s on average, servers "
            + busy.map { "\(Formatting.decimals($0 * 100, 0))%" }.joined(separator: "/") + " busy"
    }

    /// Element-wise sum of every rank's counts (of any length).
    private func sum(_ counts: [Int]) -> [Int] {
        let length = Int(communicator.allreduce(Int64(counts.count), op: .max))
        var padded = (counts + Array(repeating: 0, count: length - counts.count)).map { Int64($0) }
        padded.withUnsafeMutableBufferPointer { communicator.allreduce($0, op: .sum) }
        return padded.map { Int($0) }
    }
}
