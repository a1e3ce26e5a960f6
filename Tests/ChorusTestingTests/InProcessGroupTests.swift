import ChorusTesting
import Communication
import Foundation
import XCTest

/// The fake ranks behave like MPI ranks: matching, wildcards, probes, wait-any,
/// sub-groups, shared memory, and repeatable interleavings when stepped.
final class InProcessGroupTests: XCTestCase {
    func testAnySourceReceivesReportWhichMessageMatched() {
        let seen = InProcessGroup(size: 4).run { rank -> [Int] in
            if rank.rank == 0 {
                var sources: [Int] = []
                for _ in 1..<rank.size {
                    var value: Int32 = 0
                    let transfer = withUnsafeMutablePointer(to: &value) { pointer in
                        rank.startReceive(into: UnsafeMutableBufferPointer(start: pointer, count: 1), from: Wildcard.anySource,
                                          tag: Wildcard.anyTag)
                    }
                    transfer.wait()
                    let status = transfer.status!
                    XCTAssertEqual(Int(value), status.source * 10, "the payload came from the rank the status names")
                    XCTAssertEqual(status.tag, 100 + status.source)
                    XCTAssertEqual(status.count(of: Int32.self), 1)
                    sources.append(status.source)
                }
                return sources.sorted()
            }
            var value = Int32(rank.rank * 10)
            withUnsafePointer(to: &value) { pointer in
                rank.startSend(UnsafeBufferPointer(start: pointer, count: 1), to: 0, tag: 100 + rank.rank).wait()
            }
            return []
        }
        XCTAssertEqual(seen[0], [1, 2, 3])
    }

    func testReceivesMatchInTheOrderTheyWerePostedNotWaited() {
        let got = InProcessGroup(size: 2).run { rank -> [Float] in
            if rank.rank == 0 {
                var first: Float = 0, second: Float = 0
                let a = withUnsafeMutablePointer(to: &first) {
                    rank.startReceive(into: UnsafeMutableBufferPointer(start: $0, count: 1), from: 1, tag: 7)
                }
                let b = withUnsafeMutablePointer(to: &second) {
                    rank.startReceive(into: UnsafeMutableBufferPointer(start: $0, count: 1), from: 1, tag: 7)
                }
                b.wait()
                a.wait()
                return [first, second]
            }
            for value: Float in [1, 2] {
                var v = value
                withUnsafePointer(to: &v) { rank.startSend(UnsafeBufferPointer(start: $0, count: 1), to: 0, tag: 7).wait() }
            }
            return []
        }
        XCTAssertEqual(got[0], [1, 2], "MPI's non-overtaking rule: the first posted receive gets the first message")
    }

    func testProbeSeesAMessageWithoutTakingItAndPollReturnsNilWhenNoneIsThere() {
        let group = InProcessGroup(size: 2)
        group.run { rank in
            if rank.rank == 0 {
                XCTAssertNil(rank.poll(from: 1, tag: 3))
                rank.barrier()
                let status = rank.probe(from: Wildcard.anySource, tag: Wildcard.anyTag)
                XCTAssertEqual(status, MessageStatus(source: 1, tag: 3, byteCount: 12))
                XCTAssertEqual(rank.poll(from: 1, tag: 3), status, "probing does not receive")
                var values = [Float](repeating: 0, count: 3)
                values.withUnsafeMutableBufferPointer { rank.startReceive(into: $0, from: 1, tag: 3).wait() }
                XCTAssertEqual(values, [1, 2, 3])
                XCTAssertNil(rank.poll(from: 1, tag: 3))
            } else {
                rank.barrier()
                let values: [Float] = [1, 2, 3]
                values.withUnsafeBufferPointer { rank.startSend($0, to: 0, tag: 3).wait() }
            }
        }
    }

    func testWaitAnyReturnsTheTransferThatCompletedAndTestAnyNilBeforeThen() {
        let group = InProcessGroup(size: 3)
        group.run { rank in
            if rank.rank == 0 {
                let buffers = [MessageBuffer<Int32>(count: 1, repeating: -1), MessageBuffer<Int32>(count: 1, repeating: -1)]
                let receives = [rank.startReceive(into: buffers[0], from: 1, tag: 0), rank.startReceive(into: buffers[1], from: 2, tag: 0)]
                XCTAssertNil(rank.testAny(receives))
                rank.barrier()  // rank 2 sends after this; rank 1 only after the next barrier
                XCTAssertEqual(rank.waitAny(receives), 1)
                XCTAssertEqual(buffers[1][0], 2)
                rank.barrier()
                receives[0].wait()
                XCTAssertEqual(buffers[0][0], 1)
                XCTAssertEqual(rank.testAny(receives), 0, "completed transfers stay completed")
            } else {
                rank.barrier()
                if rank.rank == 1 { rank.barrier() }
                rank.startSend(MessageBuffer<Int32>([Int32(rank.rank)]), to: 0).wait()
                if rank.rank == 2 { rank.barrier() }
            }
        }
    }

    func testSplitWithoutAColourLeavesARankOutAndSubGroupsAreIsolated() {
        let sizes = InProcessGroup(size: 5).run { rank -> Int? in
            // Even ranks form a group numbered in reverse; rank 3 joins none.
            let sub = rank.split(color: rank.rank == 3 ? nil : rank.rank % 2, key: -rank.rank)
            if rank.rank == 3 {
                XCTAssertNil(sub)
                return nil
            }
            let sub2 = sub!
            if rank.rank % 2 == 0 {
                XCTAssertEqual(sub2.size, 3)
                XCTAssertEqual(sub2.rank, [0: 2, 2: 1, 4: 0][rank.rank], "numbered by key")
            }
            // The group's own all-reduce sums over its members only.
            let sum = sub2.allreduce(Int64(rank.rank), op: .sum)
            XCTAssertEqual(sum, rank.rank % 2 == 0 ? 6 : 1)
            sub2.release()
            return sub2.size
        }
        XCTAssertEqual(sizes, [3, 1, 3, nil, 3])
    }

    func testSplitByNodeGroupsConsecutiveRanksAndTheirSharedMemoryIsShared() {
        let group = InProcessGroup(size: 4, nodeSize: 2)
        group.run { rank in
            let node = rank.splitByNode()
            XCTAssertEqual(node.size, 2)
            XCTAssertEqual(node.rank, rank.rank % 2)
            let memory = node.allocateSharedMemory(bytesPerRank: 8)
            memory.base(of: node.rank).storeBytes(of: Int64(rank.rank), as: Int64.self)
            node.barrier()
            let peer = memory.base(of: 1 - node.rank).load(as: Int64.self)
            XCTAssertEqual(Int(peer), rank.rank ^ 1, "each rank reads its node peer's part")
            node.barrier()
            memory.release()
            node.release()
        }
    }

    func testCollectivesOfTheTransport() {
        let group = InProcessGroup(size: 3)
        group.run { rank in
            XCTAssertEqual(rank.allreduce(Double(rank.rank + 1), op: .max), 3)
            XCTAssertEqual(rank.allgather(Int32(rank.rank * 2)), [0, 2, 4])
            XCTAssertEqual(rank.allgatherBytes(Array(repeating: UInt8(rank.rank), count: rank.rank)), [[], [1], [2, 2]])
            var values: [Float] = rank.rank == 1 ? [5, 6] : [0, 0]
            values.withUnsafeMutableBufferPointer { rank.broadcast($0, root: 1) }
            XCTAssertEqual(values, [5, 6])
            let copy = rank.duplicate()
            XCTAssertEqual(copy.allreduce(Int32(1), op: .sum), 3)
            copy.release()
        }
    }

    func testTheMessageLogNamesPeersGroupsAndSizes() {
        let group = InProcessGroup(size: 2)
        group.run { rank in
            let values: [Double] = [1, 2]
            if rank.rank == 0 { values.withUnsafeBufferPointer { rank.startSend($0, to: 1, tag: 9).wait() } }
            else {
                var incoming = [Double](repeating: 0, count: 2)
                incoming.withUnsafeMutableBufferPointer { rank.startReceive(into: $0, from: 0, tag: 9).wait() }
            }
        }
        XCTAssertEqual(group.messages, [InProcessGroup.Message(source: 0, destination: 1, tag: 9, bytes: 16, group: 0)])
    }

    // MARK: Stepped scheduling

    /// Three ranks race to rank 0 with any-source messages; the order rank 0 sees is
    /// the interleaving.
    func arrivalOrder(_ scheduling: InProcessGroup.Scheduling, delays: [Double] = [0, 0, 0, 0]) -> (order: [Int], clocks: [Double]) {
        let group = InProcessGroup(size: 4, scheduling: scheduling)
        let orders = group.run { rank -> [Int] in
            if rank.rank == 0 {
                var arrivals: [Int] = []
                for _ in 0..<6 {
                    let buffer = MessageBuffer<Int32>(count: 1, repeating: 0)
                    let receive = rank.startReceive(into: buffer, from: Wildcard.anySource, tag: Wildcard.anyTag)
                    receive.wait()
                    arrivals.append(receive.status!.source)
                }
                return arrivals
            }
            for _ in 0..<2 {
                rank.advance(by: delays[rank.rank])
                rank.startSend(MessageBuffer<Int32>([Int32(rank.rank)]), to: 0).wait()
            }
            return []
        }
        return (orders[0], group.clocks)
    }

    func testSteppedRunsRepeatExactlyForASeedAndSeedsExploreDifferentInterleavings() {
        let first = arrivalOrder(.stepped(.seeded(1))).order
        for _ in 0..<5 { XCTAssertEqual(arrivalOrder(.stepped(.seeded(1))).order, first, "same seed, same interleaving") }
        let orders = Set((1...30).map { arrivalOrder(.stepped(.seeded(UInt64($0)))).order })
        XCTAssertGreaterThan(orders.count, 3, "different seeds interleave differently")
        for order in orders { XCTAssertEqual(order.sorted(), [1, 1, 2, 2, 3, 3]) }
    }

    func testCollectivesAndSubGroupsGiveTheSameResultsUnderEverySteppedOrder() {
        for seed in 1...20 {
            let results = InProcessGroup(size: 5, scheduling: .stepped(.seeded(UInt64(seed)))).run { rank -> [Int64] in
                rank.barrier()
                let total = rank.allreduce(Int64(rank.rank + 1), op: .sum)
                let half = rank.split(color: rank.rank % 2, key: rank.rank)!
                let halfTotal = half.allreduce(Int64(rank.rank), op: .sum)
                // Polling for a message yields until it is there; so does test-any.
                let right = (rank.rank + 1) % rank.size, left = (rank.rank + rank.size - 1) % rank.size
                rank.startSend(MessageBuffer([Int64(rank.rank)]), to: right, tag: 1).wait()
                while rank.poll(from: left, tag: 1) == nil {}
                let incoming = MessageBuffer<Int64>(count: 1, repeating: -1)
                let receive = rank.startReceive(into: incoming, from: left, tag: 1)
                while rank.testAny([receive]) == nil {}
                return [total, halfTotal, incoming[0]]
            }
            for (rank, result) in results.enumerated() {
                XCTAssertEqual(result, [15, rank % 2 == 0 ? 6 : 4, Int64((rank + 4) % 5)], "seed \(seed) rank \(rank)")
            }
        }
    }

    func testVirtualTimeRunsTheEarliestRankFirstAndCarriesClocksWithMessages() {
        // Rank 3 computes 1 s per message, rank 1 3 s, rank 2 2 s.
        let (order, clocks) = arrivalOrder(.stepped(.virtualTime), delays: [0, 3, 2, 1])
        // Send times: rank 3 at 1, 2; rank 2 at 2, 4; rank 1 at 3, 6 (ties: lowest rank first).
        XCTAssertEqual(order, [3, 2, 3, 1, 2, 1])
        XCTAssertEqual(clocks[0], 6, "rank 0 received the last message, sent at 6 s")
        XCTAssertEqual(clocks[1], 6)
    }
}
