import ArgumentParser
import ChorusCLI
import ChorusMPI
import Communication
import Collectives
import Foundation
import Coordination
import Persistence

/// `mpirun -n P p2p-bench`: the inputs of the alpha-beta-gamma cost model
/// (Benchmarks/scripts/costmodel.py), measured size by size:
///
/// - `pingpong`: rank 0 and `--peer` bounce a message; half the round trip is the
///   one-way time alpha + bytes * beta of that link (same node: shared memory;
///   different nodes: the network).
/// - `exchange`: rank 0 and `--peer` send to each other at the same time
///   (MPI_Sendrecv), as every step of a ring or recursive doubling does; with both
///   directions busy, copies and protocol work compete for the same cores.
/// - `shift`: every rank at once sends to the next rank and receives from the one
///   before (a ring all-reduce step): with more ranks than cores, this is what a
///   collective's step costs when its ranks take turns on the cores.
/// - `window`: rank 0 hands a buffer to the other ranks of its node through the
///   shared window (a shared-memory broadcast: piece by piece, copied in by one core
///   and out by another): the cross-core transfer of the shared-memory all-reduce.
///   Only when rank 0's node has another rank.
///
///   These two involve every rank of the node, and with more ranks than cores how
///   the turns on the cores fall differs from round to round: that is part of what
///   they cost, not noise. So they report each rank's median round, as
///   allreduce-bench does for the collectives they model; the fastest round would be
///   the one where the scheduler happened to be kind (at 4 ranks on 2 cores a 4 MiB
///   shift's fastest round has taken 0.5-0.7 of its median).
/// - `reduce`: every rank at once adds one buffer into another with the kernel the
///   collectives use: bytes * gamma, with the node's cores shared as in a collective.
/// - `memcpy`: every rank at once copies a buffer: the memory system's ceiling.
@main
struct P2PBench: MPICommand {
    static let configuration = CommandConfiguration(
        commandName: "p2p-bench",
        abstract: "Measure point-to-point latency and bandwidth, and the local reduction and copy rates.")

    @OptionGroup var messageSizes: MessageSizeOptions

    @Option(parsing: .unconditional, help: "The rank that answers rank 0's ping-pong (default: the last rank).")
    var peer: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Timed rounds per size; the fastest round counts (noise only adds time), "
        + "except for shift and window, where each rank's median round does."))
    var rounds: Int = 5

    @Option(help: "Write the results as CSV to this file (atomically).")
    var csv: String?

    func validate() throws {
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1 (got \(rounds))") }
    }

    // MPI_THREAD_MULTIPLE (the default level), as ddp-train uses the links.

    func run(world: any Communicator) throws {
        // Ping-pong times MPI's own blocking calls, as the cost model's latency needs.
        guard let world = world as? MPICommunicator else { throw P2PSetupError("p2p-bench measures MPI ranks") }
        if let csv {
            try world.together("checking \(csv)") { if world.rank == 0 { try AtomicFile.checkWritable(file: csv) } }
        }
        let peer = self.peer ?? world.size - 1
        guard world.size >= 2 else { throw P2PSetupError("p2p-bench needs at least 2 ranks (got \(world.size))") }
        guard (1..<world.size).contains(peer) else { throw P2PSetupError("--peer must be a rank from 1 to \(world.size - 1) (got \(peer))") }
        let layout = NodeLayout(world: world)
        // Whether rank 0 and the peer share a node: a node is named by its lowest rank.
        let nodeOfRank = world.allgather(layout.node.allreduce(Int32(world.rank), op: .min))
        let sameNode = nodeOfRank[0] == nodeOfRank[peer]

        let sizes = messageSizes.sizes
        // Every node whose ranks share memory gets a window; only rank 0's node's
        // broadcast is reported (the others time the same thing on their node).
        let window = layout.node.size > 1 && layout.nodeCount == 1
            ? SharedMemoryAllreduce(node: layout.node, worldRank: world.rank) : nil

        if world.rank == 0 {
            print("# p2p-bench: \(world.size) ranks, \(layout.description); ping-pong between rank 0 and rank \(peer) "
                  + "(\(sameNode ? "same node" : "different nodes")); reduce and memcpy on every rank at once")
            print(pad("size", 10) + pad("pingpong(us)", 14) + pad("GB/s", 8) + pad("exchange(us)", 14) + pad("GB/s", 8)
                  + pad("shift(us)", 12) + pad("GB/s", 8)
                  + pad("reduce(us)", 12) + pad("GB/s", 8)
                  + pad("memcpy(us)", 12) + pad("GB/s", 8))
        }
        var rows: [String] = []
        for bytes in sizes {
            let count = bytes / 4
            let calls = max(3, min(2000, (64 << 20) / max(bytes, 1) / 4))
            var message = [Float](repeating: 1, count: count)
            var accumulator = [Float](repeating: 0, count: count)
            let addend = [Float](repeating: 0, count: count)

            let pingpong = fastest(world) { () -> Double in
                message.withUnsafeMutableBufferPointer { buffer in
                    let start = MonotonicClock.seconds()
                    for _ in 0..<calls {
                        if world.rank == 0 {
                            world.send(UnsafeBufferPointer(buffer), to: peer)
                            world.receive(into: buffer, from: peer)
                        } else if world.rank == peer {
                            world.receive(into: buffer, from: 0)
                            world.send(UnsafeBufferPointer(buffer), to: 0)
                        }
                    }
                    return (MonotonicClock.seconds() - start) / Double(calls) / 2
                }
            }
            var incoming = [Float](repeating: 0, count: count)
            let exchange = fastest(world) { () -> Double in
                message.withUnsafeBufferPointer { outgoing in
                    incoming.withUnsafeMutableBufferPointer { target in
                        let start = MonotonicClock.seconds()
                        if world.rank == 0 || world.rank == peer {
                            let other = world.rank == 0 ? peer : 0
                            for _ in 0..<calls { world.exchange(send: outgoing, to: other, receive: target, from: other) }
                        }
                        return (MonotonicClock.seconds() - start) / Double(calls)
                    }
                }
            }
            let shift = median(world) { () -> Double in
                message.withUnsafeBufferPointer { outgoing in
                    incoming.withUnsafeMutableBufferPointer { target in
                        let right = (world.rank + 1) % world.size, left = (world.rank + world.size - 1) % world.size
                        let start = MonotonicClock.seconds()
                        for _ in 0..<calls { world.exchange(send: outgoing, to: right, receive: target, from: left) }
                        return (MonotonicClock.seconds() - start) / Double(calls)
                    }
                }
            }
            let windowTime: Double? = window.map { window in
                median(world) { () -> Double in
                    message.withUnsafeMutableBufferPointer { buffer in
                        let start = MonotonicClock.seconds()
                        for _ in 0..<calls { window.broadcast(buffer, root: 0) }
                        return (MonotonicClock.seconds() - start) / Double(calls)
                    }
                }
            }
            let reduce = fastest(world) { () -> Double in
                addend.withUnsafeBufferPointer { source in
                    accumulator.withUnsafeMutableBufferPointer { target in
                        let start = MonotonicClock.seconds()
                        for _ in 0..<calls { accumulate(source, into: target) }
                        return (MonotonicClock.seconds() - start) / Double(calls)
                    }
                }
            }
            let copy = fastest(world) { () -> Double in
                addend.withUnsafeBufferPointer { source in
                    accumulator.withUnsafeMutableBufferPointer { target in
                        let start = MonotonicClock.seconds()
                        for _ in 0..<calls { _ = memcpy(target.baseAddress!, source.baseAddress!, bytes) }
                        return (MonotonicClock.seconds() - start) / Double(calls)
                    }
                }
            }
            // Rank 0 saw the ping-pong; the local rates are averaged over the ranks.
            let oneWay = world.allreduce(world.rank == 0 ? pingpong : 0, op: .sum)
            let both = world.allreduce(world.rank == 0 ? exchange : 0, op: .sum)
            // A step ends when its slowest rank does.
            let shiftMax = world.allreduce(shift, op: .max)
            // The broadcast is done when its slowest receiver is.
            let windowMax = windowTime.map { world.allreduce($0, op: .max) }
            let reduceAvg = world.allreduce(reduce, op: .sum) / Double(world.size)
            let copyAvg = world.allreduce(copy, op: .sum) / Double(world.size)
            if world.rank == 0 {
                let gbps = { (seconds: Double) in Formatting.decimals(Double(bytes) / max(seconds, 1e-12) / 1e9, 2) }
                print(pad(ByteCount.format(bytes), 10) + pad(Formatting.decimals(oneWay * 1e6, 2), 14) + pad(gbps(oneWay), 8)
                      + pad(Formatting.decimals(both * 1e6, 2), 14) + pad(gbps(both), 8)
                      + pad(Formatting.decimals(shiftMax * 1e6, 2), 12) + pad(gbps(shiftMax), 8)
                      + pad(Formatting.decimals(reduceAvg * 1e6, 2), 12) + pad(gbps(reduceAvg), 8)
                      + pad(Formatting.decimals(copyAvg * 1e6, 2), 12) + pad(gbps(copyAvg), 8))
                flushStandardOutput()
                let common = "\(world.size),\(layout.nodeCount),\(sameNode),\(bytes),\(calls)"
                rows.append("pingpong,\(common),\(oneWay * 1e6)")
                rows.append("exchange,\(common),\(both * 1e6)")
                rows.append("shift,\(common),\(shiftMax * 1e6)")
                if let windowMax { rows.append("window,\(common),\(windowMax * 1e6)") }
                rows.append("reduce,\(common),\(reduceAvg * 1e6)")
                rows.append("memcpy,\(common),\(copyAvg * 1e6)")
            }
        }
        if let csv {
            try world.together("writing \(csv)") {
                if world.rank == 0 {
                    let text = (["measurement,ranks,nodes,same_node,bytes,iterations,time_us"] + rows).joined(separator: "\n") + "\n"
                    try AtomicFile.write(text, to: csv)
                }
            }
            if world.rank == 0 { print("# wrote \(csv)") }
        }
    }

    /// The fastest of `rounds` runs of `body`, which returns seconds per call; every
    /// round starts together on all ranks.
    private func fastest(_ world: any Communicator, _ body: () -> Double) -> Double {
        timedRounds(world, body).min()!
    }

    /// The median of `rounds` runs of `body`.
    private func median(_ world: any Communicator, _ body: () -> Double) -> Double {
        ChorusCLI.median(timedRounds(world, body))
    }

    private func timedRounds(_ world: any Communicator, _ body: () -> Double) -> [Double] {
        (0..<rounds).map { _ in world.barrier(); return body() }
    }
}

/// The job cannot run the measurements as asked (the same on every rank).
struct P2PSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
