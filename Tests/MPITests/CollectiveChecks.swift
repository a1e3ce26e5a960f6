import ChorusMPI
import Communication
import Collectives
import NeuralNet
import Foundation

/// Checks every Chorus all-reduce against `MPI_Allreduce` at the job's rank count.
///
/// A check passes only if it passes on every rank (the verdicts are combined with an
/// all-reduce), and every rank must end with bitwise the same buffer.
struct CollectiveChecks {
    let world: any Communicator
    let allreducer: Allreducer
    var passed = 0
    var failed = 0
    /// `CHORUS_TEST_VERBOSE=1` names each check as it finishes, to find a hang.
    let verbose = ProcessInfo.processInfo.environment["CHORUS_TEST_VERBOSE"] == "1"

    init(world: any Communicator, ranksPerNode: Int? = nil, useSharedMemory: Bool = true) {
        self.world = world
        allreducer = Allreducer(world: world, ranksPerNode: ranksPerNode, useSharedMemory: useSharedMemory)
    }

    /// Sizes that exercise the edges of the chunking: empty, single element, fewer
    /// elements than ranks, exactly p, uneven chunks, and a large odd size.
    var sizes: [Int] {
        let p = world.size
        return Array(Set([0, 1, max(p - 1, 0), p, p + 1, 1000, 1023, 1025, (1 << 20) + 3])).sorted()
    }

    mutating func record(_ ok: Bool, _ name: String) {
        if verbose && world.rank == 0 { print("check \(name)"); flushStandardOutput() }
        let everywhere = world.allAgree(ok)
        if everywhere { passed += 1 } else { failed += 1 }
        if world.rank == 0 && !everywhere { print("FAIL \(name) at \(world.size) ranks, \(allreducer.layout.description)\(allreducer.nodeMemory == nil ? "" : ", shared window")") }
    }

    /// Integer-valued inputs: every summation order gives the exact same float, so the
    /// result must equal MPI's bit for bit.
    func integerInput(_ n: Int) -> [Float] {
        (0..<n).map { i in Float((i &* 7 &+ world.rank &* 13) % 97 - 48) }
    }

    func randomInput(_ n: Int) -> [Float] {
        var g = SeededGenerator(seed: 1000 + UInt64(world.rank), stream: UInt64(n))
        return (0..<n).map { _ in g.nextFloat(bound: 1) }
    }

    func reference(_ input: [Float]) -> [Float] {
        var expected = input
        expected.withUnsafeMutableBufferPointer { world.allreduce($0, op: .sum) }
        return expected
    }

    /// Whether every rank holds the same bytes (compared through min and max).
    func identicalOnAllRanks(_ values: [Float]) -> Bool {
        var low = values.map(\.bitPattern).map { Int64($0) }
        var high = low
        low.withUnsafeMutableBufferPointer { world.allreduce($0, op: .min) }
        high.withUnsafeMutableBufferPointer { world.allreduce($0, op: .max) }
        return low == high
    }

    mutating func runAll(algorithms: [AllreduceAlgorithm] = AllreduceAlgorithm.allCases) {
        for algorithm in algorithms {
            for n in sizes {
                let tag = "\(algorithm) n=\(n)"
                // Exact sum.
                var exact = integerInput(n)
                let exactExpected = reference(exact)
                exact.withUnsafeMutableBufferPointer { allreducer.allreduce($0, .sum, algorithm: algorithm) }
                record(exact == exactExpected, "\(tag) integer sum equals MPI_Allreduce exactly")
                record(identicalOnAllRanks(exact), "\(tag) all ranks hold identical results")

                // Random floats: equal within rounding of a different summation order.
                var random = randomInput(n)
                let randomExpected = reference(random)
                random.withUnsafeMutableBufferPointer { allreducer.allreduce($0, .sum, algorithm: algorithm) }
                let tolerance = Float(world.size) * 4 * Float.ulpOfOne
                let close = zip(random, randomExpected).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
                record(close, "\(tag) random sum within \(tolerance) of MPI_Allreduce")

                // Average.
                var average = integerInput(n)
                average.withUnsafeMutableBufferPointer { allreducer.allreduce($0, .average, algorithm: algorithm) }
                let p = Float(world.size)
                let averaged = zip(average, exactExpected).allSatisfy { abs($0 - $1 / p) <= 1e-6 * max(1, abs($1 / p)) }
                record(averaged, "\(tag) average equals the sum over \(world.size)")

                // Double precision takes the same path.
                var wide = integerInput(n).map(Double.init)
                wide.withUnsafeMutableBufferPointer { allreducer.allreduce($0, .sum, algorithm: algorithm) }
                record(wide == exactExpected.map(Double.init), "\(tag) float64 sum equals MPI_Allreduce exactly")

                // The 16-bit formats of gradient compression travel narrow through
                // every algorithm but MPI's (MPI cannot add them).
                if algorithm != .mpi {
                    checkNarrow(Float16.self, tag: tag, algorithm: algorithm, n: n, magnitude: 48, widen: Float.init, narrow: Float16.init)
                    checkNarrow(BFloat16.self, tag: tag, algorithm: algorithm, n: n, magnitude: 8, widen: \.float, narrow: BFloat16.init)
                }
            }
        }
    }

    /// Integers small enough that every partial sum is exact in the narrow type (6
    /// ranks x 48 < 2^11 for float16, 6 x 8 < 2^8 for bfloat16): the sum must equal
    /// MPI_Allreduce's float32 sum exactly, on every rank, bit for bit; the average
    /// within one rounding of the narrow type.
    mutating func checkNarrow<T: CollectiveScalar>(_: T.Type, tag: String, algorithm: AllreduceAlgorithm, n: Int, magnitude: Int,
                                                   widen: (T) -> Float, narrow: (Float) -> T) {
        let input = (0..<n).map { i in Float((i &* 7 &+ world.rank &* 13) % (2 * magnitude + 1) - magnitude) }
        let expected = reference(input)
        var values = input.map(narrow)
        values.withUnsafeMutableBufferPointer { allreducer.allreduce($0, .sum, algorithm: algorithm) }
        record(values.map(widen) == expected, "\(tag) \(T.scalarKind) sum equals MPI_Allreduce's float32 sum exactly")
        record(identicalOnAllRanks(values.map(widen)), "\(tag) \(T.scalarKind) results identical on all ranks")
        var averaged = input.map(narrow)
        averaged.withUnsafeMutableBufferPointer { allreducer.allreduce($0, .average, algorithm: algorithm) }
        let p = Float(world.size), relative: Float = T.scalarKind == .float16 ? 1.0 / 1024 : 1.0 / 128
        let close = zip(averaged.map(widen), expected).allSatisfy { abs($0 - $1 / p) <= relative * max(1, abs($1 / p)) }
        record(close, "\(tag) \(T.scalarKind) average within one rounding of the sum over \(world.size)")
    }
}

/// Reduce-scatter, all-gather, broadcast and reduce against what they must produce.
extension CollectiveChecks {
    mutating func runBuildingBlocks() {
        let p = world.size
        for n in sizes {
            let input = integerInput(n)
            let total = reference(input)
            let chunks = Chunking(count: n, parts: p)

            var scattered = input
            let mine = scattered.withUnsafeMutableBufferPointer { ringReduceScatter($0, .sum, over: world) }
            record(mine == chunks.range(world.rank) && Array(scattered[mine]) == Array(total[mine]),
                   "reduce-scatter n=\(n) leaves rank r the reduced chunk r")

            var gathered = [Float](repeating: -1, count: n)
            for i in chunks.range(world.rank) { gathered[i] = total[i] }
            gathered.withUnsafeMutableBufferPointer { ringAllgather($0, over: world) }
            record(gathered == total, "all-gather n=\(n) assembles every chunk")

            for root in Set([0, p - 1, p / 2]).sorted() {  // sorted: Set order differs between processes
                var sent = world.rank == root ? input : [Float](repeating: 0, count: n)
                sent.withUnsafeMutableBufferPointer { broadcast($0, root: root, over: world) }
                let rootInput = (0..<n).map { i in Float((i &* 7 &+ root &* 13) % 97 - 48) }
                record(sent == rootInput, "broadcast n=\(n) from root \(root)")

                var reduced = input
                reduced.withUnsafeMutableBufferPointer { reduce($0, .sum, root: root, over: world) }
                record(world.rank != root || reduced == total, "reduce n=\(n) to root \(root)")
            }
        }
    }
}

/// Algorithms that wait outside MPI must keep MPI progressing.
extension CollectiveChecks {
    /// A ring's last large send completes only when the receiver's MPI acknowledges it;
    /// a receiver that has moved on to spin in the shared-memory barrier must still
    /// drive MPI, or the sender never arrives there (this hung before it did).
    mutating func runAlternatingMessagesAndSharedMemory() {
        guard allreducer.nodeMemory != nil else { return }
        var buffer = integerInput(16 << 20)
        let expected = reference(buffer)
        var ok = true
        for round in 0..<6 {
            for algorithm: AllreduceAlgorithm in [.ring, .sharedMemory, .mpi, .hierarchical, .ring, .sharedMemory] {
                var copy = buffer
                copy.withUnsafeMutableBufferPointer { allreducer.allreduce($0, .sum, algorithm: algorithm) }
                ok = ok && copy == expected
            }
            _ = round
        }
        buffer.removeAll()
        record(ok, "64 MiB all-reduces alternating ring, shared memory, MPI and hierarchical finish and agree")
    }
}
