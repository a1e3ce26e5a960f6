import Communication

/// Node-shared memory for fake ranks: one block all of them map, since threads share
/// an address space. Freed when the last rank releases it.
final class InProcessSharedMemory: SharedMemory, @unchecked Sendable {
    // @unchecked Sendable: the block and its bases are immutable; `releases` is
    // guarded by the fabric's lock; what ranks write into the block is synchronised
    // by its users, as with MPI windows.
    let bytesPerRank: Int
    private let fabric: Fabric
    private let block: UnsafeMutableRawPointer
    private let stride: Int
    private let ranks: Int
    private var releases = 0

    init(fabric: Fabric, ranks: Int, bytesPerRank: Int) {
        self.fabric = fabric
        self.bytesPerRank = bytesPerRank
        self.ranks = ranks
        stride = (max(bytesPerRank, 1) + 63) / 64 * 64
        block = .allocate(byteCount: stride * ranks, alignment: 64)
        block.initializeMemory(as: UInt8.self, repeating: 0, count: stride * ranks)
    }

    func base(of rank: Int) -> UnsafeMutableRawPointer {
        precondition((0..<ranks).contains(rank), "rank \(rank) outside shared memory of \(ranks) ranks")
        return block + rank * stride
    }

    func release() {
        let last = fabric.locked { () -> Bool in
            releases += 1
            return releases == ranks
        }
        if last { block.deallocate() }
    }
}
