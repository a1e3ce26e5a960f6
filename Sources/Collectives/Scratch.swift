import Foundation

/// Reusable scratch memory for the collectives.
///
/// A 64 MiB all-reduce over 2 ranks needs 32 MiB of receive scratch. Allocating it per
/// call means glibc `mmap`s it fresh and the first touch of every page faults: about
/// 8,000 faults per call, which costs more than the transfer itself at these sizes.
/// The pool keeps released blocks and hands them out again (largest-first fit), so a
/// training loop that reduces the same buckets every step touches warm memory.
///
/// Borrowing is thread-safe and never shares a block: two collectives running at the
/// same time (a communication thread and the main thread) get different blocks.
enum Scratch {
    private static let lock = NSLock()
    /// Released blocks, available for reuse.
    // nonisolated(unsafe): every access takes `lock`.
    nonisolated(unsafe) private static var free: [UnsafeMutableRawBufferPointer] = []
    /// Blocks kept beyond this many are released, so an unusual burst of concurrent
    /// collectives does not pin memory forever.
    private static let maximumKeptBlocks = 8

    /// Runs `body` with at least `count` elements of uninitialised scratch.
    static func withBuffer<T, R>(of _: T.Type, count: Int, _ body: (UnsafeMutableBufferPointer<T>) throws -> R) rethrows -> R {
        let bytes = max(count * MemoryLayout<T>.stride, 1)
        let block = borrow(bytes: bytes)
        defer { giveBack(block) }
        let typed = block.baseAddress!.bindMemory(to: T.self, capacity: count)
        return try body(UnsafeMutableBufferPointer(start: typed, count: count))
    }

    private static func borrow(bytes: Int) -> UnsafeMutableRawBufferPointer {
        lock.lock()
        // The smallest kept block that fits, so large blocks stay available for large calls.
        let fit = free.indices.filter { free[$0].count >= bytes }.min { free[$0].count < free[$1].count }
        let block = fit.map { free.remove(at: $0) }
        lock.unlock()
        return block ?? .allocate(byteCount: bytes, alignment: 64)
    }

    private static func giveBack(_ block: UnsafeMutableRawBufferPointer) {
        lock.lock()
        free.append(block)
        var evicted: UnsafeMutableRawBufferPointer?
        if free.count > maximumKeptBlocks, let smallest = free.indices.min(by: { free[$0].count < free[$1].count }) {
            evicted = free.remove(at: smallest)
        }
        lock.unlock()
        evicted?.deallocate()
    }
}
