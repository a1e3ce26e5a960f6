import ChorusCLI
import ChorusMPI
import Communication
import Collectives

#if canImport(Glibc)
import Glibc
#endif

/// One measured (size, algorithm) pair.
struct BenchmarkRow {
    /// The algorithm name; `auto` rows also record what it resolved to.
    let algorithm: String
    let resolved: String?
    let ranks: Int
    let nodes: Int
    let bytes: Int
    let iterations: Int
    /// Seconds per call: fastest, average and slowest rank.
    let timeMin: Double
    let timeAvg: Double
    let timeMax: Double
    let correct: Bool

    /// Bytes per second of the message, timed by the slowest rank (a collective is done
    /// when its last rank is).
    var algorithmBandwidth: Double { timeMax > 0 ? Double(bytes) / timeMax : 0 }

    /// algbw · 2(p−1)/p: what each rank's link carries in a ring all-reduce. For the
    /// memcpy row the copy bandwidth itself.
    var busBandwidth: Double {
        algorithm == BenchmarkRow.memcpy ? algorithmBandwidth : algorithmBandwidth * 2 * Double(ranks - 1) / Double(ranks)
    }

    static let memcpy = "memcpy"
}

/// Checks and times the algorithms at one size.
struct AllreduceBenchmark {
    let world: any Communicator
    let allreducer: Allreducer
    let algorithms: [AllreduceAlgorithm]
    let warmup: Int
    let rounds: Int
    let fixedIterations: Int?
    let includeMemcpy: Bool

    /// Default timed calls: enough bytes in total (1 GiB) that large sizes are timed
    /// over tens of milliseconds, at least 10 calls, at most 1000 so the small sizes
    /// (a few µs each) finish in well under a second per algorithm.
    func iterations(bytes: Int) -> Int {
        fixedIterations ?? min(1000, max(10, (1 << 30) / max(bytes, 1)))
    }

    /// Integer-valued inputs: every summation order gives the same float, so the
    /// result must equal MPI_Allreduce's bit for bit.
    func integerInput(_ count: Int) -> [Float] {
        (0..<count).map { i in Float((i &* 7 &+ world.rank &* 13) % 97 - 48) }
    }

    func measure(bytes: Int) -> [BenchmarkRow] {
        let count = bytes / MemoryLayout<Float>.stride
        let total = iterations(bytes: bytes)
        let perRound = (0..<rounds).map { total / rounds + ($0 < total % rounds ? 1 : 0) }

        // Correctness first, on data whose sum is exact.
        let input = integerInput(count)
        var expected = input
        expected.withUnsafeMutableBufferPointer { world.allreduce($0, op: .sum) }
        let correct = algorithms.map { algorithm -> Bool in
            var result = input
            result.withUnsafeMutableBufferPointer { allreducer.allreduce($0, .sum, algorithm: algorithm) }
            return world.allAgree(result == expected)
        }

        // Timing: zeros, so repeated in-place sums stay finite and every call does the
        // same arithmetic. One buffer per algorithm keeps their pages equally warm.
        var buffers = algorithms.map { _ in [Float](repeating: 0, count: count) }
        let copySource = [Float](repeating: 1, count: includeMemcpy ? count : 0)
        var copyTarget = copySource
        for (a, algorithm) in algorithms.enumerated() {
            buffers[a].withUnsafeMutableBufferPointer { buffer in
                for _ in 0..<warmup { allreducer.allreduce(buffer, .sum, algorithm: algorithm) }
            }
        }

        // Seconds per call in each round; a row reports the median round, so one round
        // that lost its core (more ranks than cores) does not stand for the size.
        var perCall = [[Double]](repeating: [], count: algorithms.count)
        var copyPerCall: [Double] = []
        for round in 0..<rounds where perRound[round] > 0 {
            let calls = perRound[round]
            // Rotate the order each round so no algorithm always runs first.
            for offset in 0..<algorithms.count {
                let a = (offset + round) % algorithms.count
                perCall[a].append(buffers[a].withUnsafeMutableBufferPointer { buffer in
                    timed(calls) { allreducer.allreduce(buffer, .sum, algorithm: algorithms[a]) }
                } / Double(calls))
            }
            if includeMemcpy {
                copyPerCall.append(copySource.withUnsafeBufferPointer { source in
                    copyTarget.withUnsafeMutableBufferPointer { target in
                        timed(calls) { _ = memcpy(target.baseAddress!, source.baseAddress!, bytes) }
                    }
                } / Double(calls))
            }
        }

        var rows = algorithms.indices.map { a in
            row(algorithms[a].rawValue,
                resolved: algorithms[a] == .auto ? allreducer.resolve(.auto, bytes: bytes).rawValue : nil,
                bytes: bytes, iterations: total, perCall: median(perCall[a]), correct: correct[a])
        }
        if includeMemcpy {
            rows.append(row(BenchmarkRow.memcpy, resolved: nil, bytes: bytes, iterations: total, perCall: median(copyPerCall),
                            correct: true))
        }
        return rows
    }

    /// Seconds for `calls` calls of `body`, started together on every rank.
    private func timed(_ calls: Int, _ body: () -> Void) -> Double {
        world.barrier()
        let start = MonotonicClock.seconds()
        for _ in 0..<calls { body() }
        return MonotonicClock.seconds() - start
    }

    /// This rank's per-call time, then fastest, average and slowest across ranks.
    private func row(_ name: String, resolved: String?, bytes: Int, iterations: Int, perCall: Double,
                     correct: Bool) -> BenchmarkRow {
        let p = world.size
        return BenchmarkRow(algorithm: name, resolved: resolved, ranks: p, nodes: allreducer.layout.nodeCount, bytes: bytes,
                            iterations: iterations, timeMin: world.allreduce(perCall, op: .min),
                            timeAvg: world.allreduce(perCall, op: .sum) / Double(p),
                            timeMax: world.allreduce(perCall, op: .max), correct: correct)
    }
}
