import Communication
import Foundation

/// One fake rank's view of a group: `Communicator` over the in-process fabric.
public final class InProcessCommunicator: Communicator, @unchecked Sendable {
    // @unchecked Sendable: immutable but for `released`, which only the owning rank
    // writes; the shared state lives in the fabric, behind its lock.
    let fabric: Fabric
    let group: GroupState
    public let rank: Int
    public var size: Int { group.members.count }
    private var released = false

    init(fabric: Fabric, group: GroupState, rank: Int) {
        self.fabric = fabric
        self.group = group
        self.rank = rank
    }

    /// This rank's number in the whole in-process group.
    public var worldRank: Int { group.members[rank] }

    /// Identifies the sub-group in `InProcessGroup.messages` (0: the whole group).
    public var groupID: Int { group.id }

    // MARK: Scripted time

    /// This rank's virtual clock.
    public var virtualTime: Double { fabric.locked { fabric.scheduler.clock(of: worldRank) } }

    /// Adds `seconds` of scripted work to this rank's clock; in stepped mode, lets the
    /// order choose who runs next.
    public func advance(by seconds: Double) {
        fabric.locked { fabric.scheduler.advance(worldRank, by: seconds, on: fabric.condition) }
    }

    // MARK: Point-to-point

    private func checkUsable(_ location: SourceLocation) {
        precondition(!released, "in-process group \(group.id) used after release() at \(location)")
    }

    private func checkPeer(_ peer: Int, wildcard: Bool, _ location: SourceLocation) {
        precondition((0..<size).contains(peer) || (wildcard && peer == Wildcard.anySource),
                     "rank \(peer) is not in a group of \(size) (at \(location))")
    }

    public func startSend<T: MessageScalar>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int,
                                            keepAlive: AnyObject?, at location: SourceLocation) -> any Transfer {
        checkUsable(location)
        checkPeer(destination, wildcard: false, location)
        let payload = Array(UnsafeRawBufferPointer(buffer))
        fabric.locked {
            fabric.post(Fabric.Envelope(group: group.id, source: rank, destination: destination, tag: tag, payload: payload,
                                        sentAt: fabric.scheduler.clock(of: worldRank)))
        }
        return CompletedSend()
    }

    public func startReceive<T: MessageScalar>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int,
                                               keepAlive: AnyObject?, at location: SourceLocation) -> any Transfer {
        checkUsable(location)
        checkPeer(source, wildcard: true, location)
        let receive = PendingReceive(fabric: fabric, group: group.id, destination: rank, worldRank: worldRank, source: source,
                                     tag: tag, buffer: UnsafeMutableRawBufferPointer(buffer), keepAlive: keepAlive)
        fabric.locked { fabric.post(receive) }
        return receive
    }

    public func probe(from source: Int, tag: Int, at location: SourceLocation) -> MessageStatus {
        checkUsable(location)
        return fabric.locked {
            fabric.scheduler.block(worldRank, on: fabric.condition, waitingFor: "a probe for tag \(tag) from \(source)") { [self] in
                fabric.peek(group: group.id, destination: rank, source: source, tag: tag) != nil
            }
            return fabric.peek(group: group.id, destination: rank, source: source, tag: tag)!
        }
    }

    public func poll(from source: Int, tag: Int, at location: SourceLocation) -> MessageStatus? {
        checkUsable(location)
        return fabric.locked {
            let found = fabric.peek(group: group.id, destination: rank, source: source, tag: tag)
            if found == nil { fabric.scheduler.yield(worldRank, on: fabric.condition) }
            return found
        }
    }

    private func completed(_ transfers: [any Transfer]) -> Int? {
        transfers.firstIndex { transfer in
            switch transfer {
            case let receive as PendingReceive: receive.delivered
            case is CompletedSend: true
            default: preconditionFailure("waitAny/testAny was given a transfer of another group")
            }
        }
    }

    public func waitAny(_ transfers: [any Transfer], at location: SourceLocation) -> Int {
        precondition(!transfers.isEmpty, "waitAny of no transfers (at \(location))")
        return fabric.locked {
            fabric.scheduler.block(worldRank, on: fabric.condition, waitingFor: "any of \(transfers.count) transfers") { [self] in
                completed(transfers) != nil
            }
            return completed(transfers)!
        }
    }

    public func testAny(_ transfers: [any Transfer], at location: SourceLocation) -> Int? {
        fabric.locked {
            let done = completed(transfers)
            if done == nil { fabric.scheduler.yield(worldRank, on: fabric.condition) }
            return done
        }
    }

    // MARK: Collectives, through a rendezvous of all members

    private func collective<R>(_ what: String, _ contribution: Any, _ location: SourceLocation,
                               combine: @escaping ([Any]) -> R) -> R {
        checkUsable(location)
        return fabric.locked {
            let sequence = group.sequences[rank]
            group.sequences[rank] += 1
            return fabric.gather(Fabric.RendezvousKey(group: group.id, sequence: sequence), size: size, rank: rank,
                                 worldRank: worldRank, what: "\(what) (collective #\(sequence) of group \(group.id), at \(location))",
                                 contribution: contribution, combine: combine)
        }
    }

    public func barrier(at location: SourceLocation) {
        collective("a barrier", (), location) { _ in () }
    }

    public func allreduce<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp, at location: SourceLocation) {
        let result: [T] = collective("an all-reduce of \(buffer.count) elements", Array(buffer), location) { contributions in
            let arrays = contributions.map { $0 as! [T] }
            precondition(Set(arrays.map(\.count)).count == 1, "ranks passed different lengths to an all-reduce: \(arrays.map(\.count))")
            return elementwise(arrays, op)
        }
        _ = buffer.update(fromContentsOf: result)
    }

    public func broadcast<T: MessageScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int, at location: SourceLocation) {
        let result: [T] = collective("a broadcast from rank \(root)", Array(buffer), location) { $0[root] as! [T] }
        precondition(result.count == buffer.count, "rank \(rank) broadcast buffer has \(buffer.count) elements, the root's \(result.count)")
        _ = buffer.update(fromContentsOf: result)
    }

    public func allgather<T: MessageScalar>(_ value: T, at location: SourceLocation) -> [T] {
        collective("an all-gather", value, location) { $0.map { $0 as! T } }
    }

    public func allgatherBytes(_ bytes: [UInt8], at location: SourceLocation) -> [[UInt8]] {
        collective("an all-gather of bytes", bytes, location) { $0.map { $0 as! [UInt8] } }
    }

    // MARK: Groups

    /// (color, key) of every member → each member's new group and rank.
    private func regroup(_ what: String, color: Int?, key: Int, _ location: SourceLocation) -> InProcessCommunicator? {
        let fabric = self.fabric, members = group.members
        let placements: [(GroupState, Int)?] = collective(what, (color, key), location) { contributions in
            let wishes = contributions.map { $0 as! (Int?, Int) }
            var placements: [(GroupState, Int)?] = Array(repeating: nil, count: wishes.count)
            for color in Set(wishes.compactMap(\.0)).sorted() {
                let ranks = wishes.indices.filter { wishes[$0].0 == color }.sorted { (wishes[$0].1, $0) < (wishes[$1].1, $1) }
                let state = GroupState(id: fabric.newGroupID(), members: ranks.map { members[$0] })
                for (newRank, old) in ranks.enumerated() { placements[old] = (state, newRank) }
            }
            return placements
        }
        return placements[rank].map { InProcessCommunicator(fabric: fabric, group: $0.0, rank: $0.1) }
    }

    public func split(color: Int?, key: Int, at location: SourceLocation) -> (any Communicator)? {
        regroup("a split", color: color, key: key, location)
    }

    public func splitByNode(at location: SourceLocation) -> any Communicator {
        regroup("a split by node", color: worldRank / fabric.nodeSize, key: rank, location)!
    }

    public func duplicate(at location: SourceLocation) -> any Communicator {
        regroup("a duplicate", color: 0, key: rank, location)!
    }

    public func allocateSharedMemory(bytesPerRank: Int, at location: SourceLocation) -> any SharedMemory {
        let fabric = self.fabric, size = self.size, node = Set(group.members.map { $0 / fabric.nodeSize })
        precondition(node.count == 1, "shared memory spans ranks of \(node.count) nodes (at \(location))")
        let block: SharedBlock = collective("a shared-memory allocation", bytesPerRank, location) { contributions in
            let sizes = contributions.map { $0 as! Int }
            precondition(Set(sizes).count == 1, "ranks asked for different shared-memory sizes: \(sizes)")
            return SharedBlock(fabric: fabric, ranks: size, bytesPerRank: sizes[0])
        }
        return InProcessSharedMemory(block: block)
    }

    public func release(at location: SourceLocation) {
        guard group.id != 0 else { return }
        checkUsable(location)
        released = true
    }

    // MARK: Progress and failure

    public func progress(at location: SourceLocation) {
        fabric.locked { fabric.scheduler.yield(worldRank, on: fabric.condition) }
    }

    public func abort(_ message: String) -> Never {
        fatalError("in-process rank \(worldRank) ended the job: \(message)")
    }
}

/// Element-wise reduction of equal-length arrays, in rank order.
private func elementwise<T: MessageScalar>(_ arrays: [[T]], _ op: ReduceOp) -> [T] {
    func reduce<N: Comparable & AdditiveArithmetic>(_ arrays: [[N]]) -> [N] {
        var result = arrays[0]
        for array in arrays.dropFirst() {
            for i in result.indices {
                switch op {
                case .sum: result[i] += array[i]
                case .max: result[i] = max(result[i], array[i])
                case .min: result[i] = min(result[i], array[i])
                }
            }
        }
        return result
    }
    switch T.scalarKind {
    case .float32: return reduce(arrays as! [[Float]]) as! [T]
    case .float64: return reduce(arrays as! [[Double]]) as! [T]
    case .int32: return reduce(arrays as! [[Int32]]) as! [T]
    case .int64: return reduce(arrays as! [[Int64]]) as! [T]
    case .uint8: return reduce(arrays as! [[UInt8]]) as! [T]
    case .uint16: return reduce(arrays as! [[UInt16]]) as! [T]
    case .float16, .bfloat16: preconditionFailure("the transport cannot reduce \(T.scalarKind), as MPI cannot")
    }
}
