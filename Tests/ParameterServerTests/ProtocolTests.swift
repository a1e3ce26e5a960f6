import ChorusTesting
import Communication
import NeuralNet
@testable import ParameterServer
import XCTest

/// The push-pull protocol on fake ranks, without a model: servers (`ServerShard`)
/// and workers (`WorkerChannel`) exchanging hand-made gradients, with SGD at rate 1
/// so that a push of -W·v adds exactly v to the parameters.
final class ProtocolTests: XCTestCase {
    struct WorkerResult: Sendable {
        var clock = 0
        /// Reads that saw another worker's coordinate below clock - S, or its own not at its clock.
        var violations: [String] = []
        var values: [Float] = []
        var maxStaleness = 0
    }

    /// Runs `servers` shards and `workers` workers on fake ranks in virtual time:
    /// worker w's iteration takes `seconds(w)`; it adds 1 to coordinate w every
    /// clock (Bösen's clock-table check). The run pauses once `pushes` have arrived.
    func clockTable(servers: Int, workers: Int, consistency: ConsistencyModel, pushes: Int,
                    seconds: @escaping @Sendable (Int) -> Double) throws -> (workers: [WorkerResult], table: [Float]) {
        let slots = [ParameterSlot(name: "clock", shape: [workers], offset: 0, layerIndex: 0)]
        let partition = try ServerPartition(slots: slots, servers: servers)
        let group = InProcessGroup(size: servers + workers, scheduling: .stepped(.virtualTime))
        let results = group.run { rank -> (WorkerResult?, [Float]) in
            if rank.rank < servers {
                let shard = ServerShard(index: rank.rank, parameters: FlatParameters(slots: partition.pieces(of: rank.rank, slots: slots)),
                                        optimizer: SGD(learningRate: 1), consistency: consistency, channel: rank,
                                        workerRanks: Array(servers..<(servers + workers)))
                shard.serve(untilPushes: pushes, synchronizing: true, watchdog: nil, step: 0)
                return (nil, shard.parameters.valueArray)
            }
            let w = rank.rank - servers
            let channel = WorkerChannel(channel: rank, partition: partition)
            var result = WorkerResult()
            let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: workers)
            let gradients = UnsafeMutableBufferPointer<Float>.allocate(capacity: workers)
            defer { values.deallocate(); gradients.deallocate() }
            values.initialize(repeating: 0)
            while true {
                let c = result.clock
                if Int(values[w]) != c { result.violations.append("worker \(w) at clock \(c) reads its own \(values[w])") }
                if let bound = consistency.bound {
                    for v in 0..<workers where v != w && Int(values[v]) < c - bound {
                        result.violations.append("worker \(w) at clock \(c) reads worker \(v)'s \(values[v])")
                    }
                }
                rank.advance(by: seconds(w))
                gradients.initialize(repeating: 0)
                gradients[w] = -Float(workers)
                let answer = channel.pushPull(gradients: gradients, loss: 0, skipped: false, clock: c, into: values, watchdog: nil)
                result.clock += 1
                if answer.verdict == .pause {
                    channel.announcePause()
                    break
                }
            }
            result.values = Array(values)
            result.maxStaleness = channel.staleness.maximum
            return (result, [])
        }
        return (results.compactMap(\.0), results.prefix(servers).flatMap(\.1))
    }

    func testSSPBoundHoldsUnderAPersistentStraggler() throws {
        for servers in [1, 2] {
            for bound in [0, 1, 2, 3] {
                let (workers, table) = try clockTable(servers: servers, workers: 4, consistency: .ssp(staleness: bound), pushes: 60) {
                    $0 == 2 ? 3 : 1
                }
                let label = "S=\(bound), \(servers) servers"
                XCTAssertEqual(workers.flatMap(\.violations), [], label)
                // Every update arrived: each coordinate is its worker's iteration count.
                XCTAssertEqual(table, workers.map { Float($0.clock) }, label)
                let slow = workers[2].clock
                for (w, worker) in workers.enumerated() where w != 2 {
                    XCTAssertGreaterThanOrEqual(worker.clock, slow, label)
                    XCTAssertLessThanOrEqual(worker.clock, slow + bound, "\(label): worker \(w) ends at most S clocks ahead")
                    if bound > 0 { XCTAssertGreaterThan(worker.clock, slow, "\(label): fast workers get ahead") }
                }
                XCTAssertEqual(workers.map(\.maxStaleness).max(), bound, "\(label): the bound is reached, not exceeded")
            }
        }
    }

    func testBSPKeepsWorkersInLockstep() throws {
        let (workers, table) = try clockTable(servers: 1, workers: 3, consistency: .bsp, pushes: 30) { Double($0 + 1) }
        XCTAssertEqual(workers.map(\.clock), [10, 10, 10])
        XCTAssertEqual(table, [10, 10, 10])
        XCTAssertEqual(workers.map(\.maxStaleness), [0, 0, 0])
        XCTAssertEqual(workers.flatMap(\.violations), [])
    }

    func testASPLetsFastWorkersRunAhead() throws {
        let (workers, table) = try clockTable(servers: 2, workers: 3, consistency: .asp, pushes: 50) { $0 == 0 ? 5 : 1 }
        XCTAssertEqual(table, workers.map { Float($0.clock) })
        // In the time worker 0 takes for one iteration the others take five.
        XCTAssertGreaterThan(workers[1].clock, 3 * workers[0].clock)
        XCTAssertGreaterThan(workers.map(\.maxStaleness).max() ?? 0, 3)
        XCTAssertEqual(workers.flatMap(\.violations), [])
    }

    /// ps-lite's test in spirit: every worker pushes the same values again and again,
    /// in real threads (any interleaving); the servers' sums are exact.
    func testPushedValuesSumExactlyOnTheServers() throws {
        let slots = [ParameterSlot(name: "a", shape: [3, 5], offset: 0, layerIndex: 0),
                     ParameterSlot(name: "b", shape: [7], offset: 15, layerIndex: 1),
                     ParameterSlot(name: "c", shape: [40], offset: 22, layerIndex: 2)]
        let count = 62, workers = 3, rounds = 25
        for consistency in [ConsistencyModel.bsp, .ssp(staleness: 1), .asp] {
            for servers in [1, 2, 3] {
                let partition = try ServerPartition(slots: slots, servers: servers)
                let results = InProcessGroup(size: servers + workers).run { rank -> [Float] in
                    if rank.rank < servers {
                        let shard = ServerShard(index: rank.rank, parameters: FlatParameters(slots: partition.pieces(of: rank.rank, slots: slots)),
                                                optimizer: SGD(learningRate: 1), consistency: consistency, channel: rank,
                                                workerRanks: Array(servers..<(servers + workers)))
                        shard.serve(untilPushes: rounds * workers, synchronizing: true, watchdog: nil, step: 0)
                        return shard.parameters.valueArray
                    }
                    let w = rank.rank - servers
                    let channel = WorkerChannel(channel: rank, partition: partition)
                    let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
                    let gradients = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
                    defer { values.deallocate(); gradients.deallocate() }
                    var clock = 0
                    while true {
                        // Worker w pushes -(w+1)·(i+1)·W at position i: the sum over W workers adds (i+1)·Σ(w+1).
                        for i in 0..<count { gradients[i] = -Float((w + 1) * (i + 1) * workers) }
                        let answer = channel.pushPull(gradients: gradients, loss: 0, skipped: false, clock: clock, into: values, watchdog: nil)
                        clock += 1
                        if answer.verdict == .pause { channel.announcePause(); break }
                    }
                    return [Float(clock)]
                }
                let table = results.prefix(servers).flatMap { $0 }
                let clocks = results.dropFirst(servers).map { Int($0[0]) }
                let label = "\(consistency), \(servers) servers"
                // Every push is counted once: the sum is Σ_w clock_w·(w+1)·(i+1).
                let expected = (0..<count).map { i in Float(clocks.enumerated().reduce(0) { $0 + $1.element * ($1.offset + 1) } * (i + 1)) }
                XCTAssertEqual(table, expected, label)
                XCTAssertGreaterThanOrEqual(clocks.reduce(0, +), rounds * workers, label)
            }
        }
    }
}
