import ChorusCLI
import ChorusMPI
import Communication
import Collectives
import Coordination

#if canImport(Glibc)
import Glibc
#endif

/// The nccl-tests style table on rank 0, and the CSV.
struct BenchmarkReport {
    let world: any Communicator
    let layout: NodeLayout

    static let csvHeader = "algorithm,ranks,nodes,bytes,iterations,time_us_min,time_us_avg,time_us_max,algbw_GBps,busbw_GBps,correct"

    func printHeader(maxBytes: Int) {
        guard world.rank == 0 else { return }
        print("# allreduce-bench: \(world.size) ranks, \(layout.description); float32 sum, in place")
        print("# time: per call, slowest rank; algbw = bytes / time; busbw = algbw * 2(p-1)/p; GB = 1e9 bytes")
        print("# auto rules: " + AllreducePolicy.rules.map { "\($0.algorithm.rawValue) if \($0.condition)" }.joined(separator: "; "))
        print("#")
        print(pad("size", 10) + pad("count", 11) + "  " + pad("algorithm", -26) + pad("time(us)", 11) + pad("algbw(GB/s)", 12)
              + pad("busbw(GB/s)", 12) + pad("vs mpi", 8) + pad("correct", 9))
        flushStandardOutput()
    }

    func printRows(_ rows: [BenchmarkRow]) {
        guard world.rank == 0 else { return }
        let mpi = rows.first { $0.algorithm == AllreduceAlgorithm.mpi.rawValue }
        for row in rows {
            let name = row.resolved.map { "\(row.algorithm) (\($0))" } ?? row.algorithm
            let ratio = (mpi != nil && row.algorithm != BenchmarkRow.memcpy && mpi!.timeMax > 0)
                ? Formatting.decimals(mpi!.timeMax / row.timeMax, 2) + "x" : ""
            print(pad(ByteCount.format(row.bytes), 10) + pad("\(row.bytes / 4)", 11) + "  " + pad(name, -26)
                  + pad(Formatting.decimals(row.timeMax * 1e6, 1), 11) + pad(Formatting.decimals(row.algorithmBandwidth / 1e9, 3), 12)
                  + pad(Formatting.decimals(row.busBandwidth / 1e9, 3), 12) + pad(ratio, 8) + pad(row.correct ? "yes" : "NO", 9))
        }
        flushStandardOutput()
    }

    /// How `auto` did against MPI_Allreduce, and the best bus bandwidth against memcpy.
    func printSummary(_ rows: [BenchmarkRow]) {
        guard world.rank == 0 else { return }
        print("#")
        let bySize = Dictionary(grouping: rows, by: \.bytes)
        let ratios = bySize.keys.sorted().compactMap { bytes -> (Int, Double)? in
            let here = bySize[bytes]!
            guard let auto = here.first(where: { $0.algorithm == "auto" }),
                  let mpi = here.first(where: { $0.algorithm == "mpi" }), auto.timeMax > 0 else { return nil }
            return (bytes, mpi.timeMax / auto.timeMax)
        }
        for (label, range) in [("4 KiB - 64 MiB", (4 << 10)...(64 << 20)), ("4 MiB - 64 MiB", (4 << 20)...(64 << 20))] {
            let inRange = ratios.filter { range.contains($0.0) }
            guard let worst = inRange.min(by: { $0.1 < $1.1 }) else { continue }
            print("# auto vs mpi, \(label): worst \(Formatting.decimals(worst.1, 2))x at \(ByteCount.format(worst.0)), "
                  + "geometric mean \(Formatting.decimals(geometricMean(inRange.map(\.1)), 2))x")
        }
        if let largest = bySize.keys.max(), let copy = bySize[largest]!.first(where: { $0.algorithm == BenchmarkRow.memcpy }),
           let best = bySize[largest]!.filter({ $0.algorithm != BenchmarkRow.memcpy }).max(by: { $0.busBandwidth < $1.busBandwidth }) {
            print("# at \(ByteCount.format(largest)): best busbw \(Formatting.decimals(best.busBandwidth / 1e9, 2)) GB/s (\(best.algorithm)) = "
                  + "\(Formatting.decimals(100 * best.busBandwidth / copy.busBandwidth, 0))% of memcpy's \(Formatting.decimals(copy.busBandwidth / 1e9, 2)) GB/s")
        }
        flushStandardOutput()
    }

    static func csv(_ rows: [BenchmarkRow]) -> String {
        var lines = [csvHeader]
        for row in rows {
            let fields: [String] = [row.algorithm, "\(row.ranks)", "\(row.nodes)", "\(row.bytes)", "\(row.iterations)",
                                    Formatting.decimals(row.timeMin * 1e6, 3), Formatting.decimals(row.timeAvg * 1e6, 3), Formatting.decimals(row.timeMax * 1e6, 3),
                                    Formatting.decimals(row.algorithmBandwidth / 1e9, 4), Formatting.decimals(row.busBandwidth / 1e9, 4),
                                    row.correct ? "true" : "false"]
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

private func geometricMean(_ values: [Double]) -> Double {
    exp(values.map(log).reduce(0, +) / Double(max(values.count, 1)))
}

