import Communication

/// Node-shared memory for fake ranks: one block all of them map, since threads share
/// an address space. Each rank holds its own handle; the block is freed when the last
/// rank has released its handle (a rank releasing twice counts once).
final class InProcessSharedMemory: SharedMemory, @unchecked Sendable {
    // @unchecked Sendable: immutable but for `released`, which only the owning rank
    // writes; the shared block counts releases under the fabric's lock.
    let bytesPerRank: Int
    private let block: SharedBlock
    private var released = false

    init(block: SharedBlock) {
        self.block = block
        bytesPerRank = block.bytesPerRank
    }

    func base(of rank: Int) -> UnsafeMutableRawPointer {
        precondition(!released, "shared memory used after release()")
        return block.base(of: rank)
    }

    func release() {
        guard !released else { return }
        released = true
        block.releaseOne()
    }
}

/// The memory behind every rank's `InProcessSharedMemory`.
final class SharedBlock: @unchecked Sendable {
    // @unchecked Sendable: the pointer and sizes are immutable; `releases` is guarded
    // by the fabric's lock.
    let bytesPerRank: Int
    private let fabric: Fabric
    private let memory: UnsafeMutableRawPointer
    private let stride: Int
    private let ranks: Int
    private var releases = 0

    init(fabric: Fabric, ranks: Int, bytesPerRank: Int) {
        self.fabric = fabric
        self.bytesPerRank = bytesPerRank
        self.ranks = ranks
        stride = (max(bytesPerRank, 1) + 63) / 64 * 64
        memory = .allocate(byteCount: stride * ranks, alignment: 64)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: stride * ranks)
    }

    func base(of rank: Int) -> UnsafeMutableRawPointer {
        precondition((0..<ranks).contains(rank), "rank \(rank) outside shared memory of \(ranks) ranks")
        return memory + rank * stride
    }

    func releaseOne() {
        let last = fabric.locked { () -> Bool in
            releases += 1
            return releases == ranks
        }
        if last { memory.deallocate() }
    }
}
