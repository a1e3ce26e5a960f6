import ChorusMPI
import Communication

/// The calls the asynchronous trainers build on, on real MPI ranks: receives from any
/// source with their status, probes, wait-any and test-any, a split in which ranks
/// take no group, and explicit release of groups and shared memory.
///
/// A check passes only if it passes on every rank.
struct PointToPointChecks {
    let world: MPICommunicator
    var passed = 0
    var failed = 0

    mutating func record(_ ok: Bool, _ name: String) {
        let everywhere = world.allAgree(ok)
        if everywhere { passed += 1 } else { failed += 1 }
        if world.rank == 0 && !everywhere { print("FAIL \(name) at \(world.size) ranks") }
    }

    mutating func runAll() {
        anySourceReceivesCarryTheirStatus()
        probesSizeTheReceive()
        waitAnyAndTestAny()
        splitWithoutAColour()
        releaseGroupsAndSharedMemory()
    }

    /// Rank r > 0 sends r copies of r with tag 100 + r; rank 0 receives them in
    /// whatever order they arrive and checks each against its status.
    mutating func anySourceReceivesCarryTheirStatus() {
        var ok = true
        if world.rank == 0 {
            var sources: [Int] = []
            for _ in 1..<world.size {
                let buffer = MessageBuffer<Int32>(count: world.size, repeating: -1)
                let receive = world.startReceive(into: buffer, from: Wildcard.anySource, tag: Wildcard.anyTag)
                receive.wait()
                guard let status = receive.status else { ok = false; continue }
                let count = status.count(of: Int32.self)
                ok = ok && status.tag == 100 + status.source && count == status.source
                    && buffer.array.prefix(count).allSatisfy { Int($0) == status.source }
                sources.append(status.source)
            }
            ok = ok && sources.sorted() == Array(1..<world.size)
        } else {
            world.startSend(MessageBuffer(Array(repeating: Int32(world.rank), count: world.rank)), to: 0,
                            tag: 100 + world.rank).wait()
        }
        record(ok, "any-source receives report source, tag and count")
    }

    /// Rank r > 0 sends a message of 3r floats once rank 0 has polled and found
    /// nothing; rank 0 polls until each arrives, probes it, and receives it by size.
    mutating func probesSizeTheReceive() {
        var ok = true
        if world.rank == 0 {
            ok = world.poll(from: Wildcard.anySource, tag: 7) == nil
            world.barrier()
            for _ in 1..<world.size {
                var polled = world.poll(from: Wildcard.anySource, tag: 7)
                while polled == nil { polled = world.poll(from: Wildcard.anySource, tag: 7) }
                let status = world.probe(from: polled!.source, tag: 7)
                ok = ok && status == polled
                let buffer = MessageBuffer<Float>(count: status.count(of: Float.self), repeating: 0)
                let receive = world.startReceive(into: buffer, from: status.source, tag: 7)
                receive.wait()
                ok = ok && buffer.count == 3 * status.source && buffer.array.allSatisfy { $0 == Float(status.source) }
                    && receive.status == status
            }
        } else {
            world.barrier()
            world.startSend(MessageBuffer(Array(repeating: Float(world.rank), count: 3 * world.rank)), to: 0, tag: 7).wait()
        }
        record(ok, "poll finds nothing early, then each message; probe describes it, and it fits its receive")
    }

    /// Rank 0 posts a receive from every other rank before anyone sends; test-any
    /// finds none complete; after a barrier each is returned exactly once, by test-any
    /// for the first half and wait-any for the rest.
    mutating func waitAnyAndTestAny() {
        var ok = true
        if world.rank == 0 {
            let buffers = (1..<max(world.size, 2)).map { _ in MessageBuffer<Int64>(count: 1, repeating: 0) }
            let receives = (1..<world.size).map { world.startReceive(into: buffers[$0 - 1], from: $0, tag: 11) }
            if !receives.isEmpty { ok = world.testAny(receives) == nil }
            world.barrier()
            var pending = receives, seen: [Int] = []
            while !pending.isEmpty {
                let index: Int
                if seen.count < receives.count / 2 {
                    var found = world.testAny(pending)
                    while found == nil { found = world.testAny(pending) }
                    index = found!
                } else {
                    index = world.waitAny(pending)
                }
                seen.append(pending[index].status?.source ?? -1)
                pending.remove(at: index)
            }
            ok = ok && seen.sorted() == Array(1..<world.size)
                && buffers.prefix(world.size - 1).enumerated().allSatisfy { $0.element[0] == Int64(($0.offset + 1) * 1000) }
        } else {
            world.barrier()
            world.startSend(MessageBuffer([Int64(world.rank * 1000)]), to: 0, tag: 11).wait()
        }
        record(ok, "test-any finds nothing early; wait-any returns each receive once")
    }

    /// Even ranks form a group (numbered in reverse); odd ranks take none.
    mutating func splitWithoutAColour() {
        let group = world.split(color: world.rank % 2 == 0 ? 0 : nil, key: -world.rank)
        var ok: Bool
        if world.rank % 2 == 0, let group {
            let evens = (0..<world.size).filter { $0 % 2 == 0 }
            ok = group.size == evens.count && group.rank == evens.reversed().firstIndex(of: world.rank)!
                && group.allreduce(Int64(world.rank), op: .sum) == Int64(evens.reduce(0, +))
            group.release()
        } else {
            ok = group == nil
        }
        record(ok, "a split without a colour leaves the rank out")
    }

    mutating func releaseGroupsAndSharedMemory() {
        let copy = world.duplicate()
        var ok = copy.size == world.size && copy.allreduce(Int32(1), op: .sum) == Int32(world.size)
        copy.release()
        let node = world.splitByNode()
        let memory = node.allocateSharedMemory(bytesPerRank: 64)
        memory.base(of: node.rank).storeBytes(of: Int64(world.rank), as: Int64.self)
        node.barrier()
        let peers = (0..<node.size).map { Int(memory.base(of: $0).load(as: Int64.self)) }
        ok = ok && peers == node.allgather(Int64(world.rank)).map(Int.init)
        node.barrier()
        memory.release()
        node.release()
        record(ok, "duplicated groups and shared memory are released explicitly")
    }
}
