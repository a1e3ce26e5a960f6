import ChorusMPI
import Communication
import Collectives
import Foundation
import Persistence

#if canImport(Glibc)
import Glibc
#endif

/// Multi-process checks, run under mpirun by Tests/mpi/run.sh:
///
///     chorus-mpi-tests collectives            every all-reduce vs MPI_Allreduce
///     chorus-mpi-tests point-to-point         any-source receives, probes, wait-any, splits, release
///     chorus-mpi-tests mismatched-length ALG  rank 1 passes a longer buffer: must abort
///     chorus-mpi-tests check-trace FILE P [pipeline]  a Chrome trace with every phase on P ranks
///     chorus-mpi-tests compare-models A B T   max relative difference of two model files <= T
///     chorus-mpi-tests check-metrics FILE K=V... metrics JSON has these keys; `K>=V` bounds a number
///
/// Each prints a closing line `NAME: N passed, N failed` on rank 0 and exits non-zero
/// when anything failed.
@main
enum ChorusMPITests {
    static func main() {
        let world = MPIRuntime.initialize(requiring: .funneled, because: "the checks run on the main thread")
        let arguments = Array(CommandLine.arguments.dropFirst())
        var failed = 0
        switch arguments.first {
        case "collectives":
            var checks = CollectiveChecks(world: world)
            checks.runAll()
            checks.runBuildingBlocks()
            checks.runAlternatingMessagesAndSharedMemory()
            // Hierarchical again under simulated node groupings (the last node may be
            // smaller), with node stages through the shared window and through messages.
            for ranksPerNode in [1, 2, 3] where ranksPerNode < world.size {
                for useSharedMemory in [true, false] {
                    var grouped = CollectiveChecks(world: world, ranksPerNode: ranksPerNode, useSharedMemory: useSharedMemory)
                    grouped.runAll(algorithms: [.hierarchical, .sharedMemory, .auto])
                    checks.passed += grouped.passed
                    checks.failed += grouped.failed
                }
            }
            if world.rank == 0 { print("collectives at \(world.size) ranks: \(checks.passed) passed, \(checks.failed) failed") }
            failed = checks.failed
        case "point-to-point":
            var checks = PointToPointChecks(world: world)
            checks.runAll()
            if world.rank == 0 { print("point-to-point at \(world.size) ranks: \(checks.passed) passed, \(checks.failed) failed") }
            failed = checks.failed
        case "mismatched-length" where arguments.count == 2:
            // Rank 1 passes one element more than the others: the job must end with a
            // message naming the ranks (never return, never hang).
            guard let algorithm = AllreduceAlgorithm(rawValue: arguments[1]) else { failed = 1; break }
            let allreducer = Allreducer(world: world, ranksPerNode: 2)
            var buffer = [Float](repeating: 1, count: 100_000 + (world.rank == 1 ? 1 : 0))
            buffer.withUnsafeMutableBufferPointer { allreducer.allreduce($0, .sum, algorithm: algorithm) }
            if world.rank == 0 { print("mismatched-length: the all-reduce returned instead of reporting the mismatch") }
            failed = 1
        case "check-trace" where arguments.count == 3 || arguments.count == 4:
            failed = checkTrace(arguments[1], ranks: Int(arguments[2]) ?? 0, pipeline: arguments.count == 4) ? 0 : 1
            if world.rank == 0 { print("check-trace: \(1 - failed) passed, \(failed) failed") }
        case "compare-models" where arguments.count == 4:
            failed = compareModels(arguments[1], arguments[2], tolerance: Float(arguments[3]) ?? 0) ? 0 : 1
            if world.rank == 0 { print("compare-models: \(1 - failed) passed, \(failed) failed") }
        case "check-metrics" where arguments.count >= 2:
            failed = checkMetrics(arguments[1], Array(arguments.dropFirst(2))) ? 0 : 1
            if world.rank == 0 { print("check-metrics: \(1 - failed) passed, \(failed) failed") }
        default:
            if world.rank == 0 {
                writeToStandardError("usage: chorus-mpi-tests collectives | point-to-point | mismatched-length ALGORITHM | check-trace FILE RANKS [pipeline] | compare-models A B TOLERANCE | check-metrics FILE KEY[>=|=]VALUE...\n")
            }
            failed = 1
        }
        MPIRuntime.finalize()
        exit(failed == 0 ? 0 : 1)
    }

    /// Checks a metrics file: `key` must exist, `key>=number` bounds it from below,
    /// `key=value` must match exactly (as text).
    static func checkMetrics(_ path: String, _ conditions: [String]) -> Bool {
        guard let data = try? AtomicFile.read(path),
              let object = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] else {
            print("cannot read metrics JSON \(path)")
            return false
        }
        var ok = true
        for condition in conditions {
            if let range = condition.range(of: ">=") {
                let key = String(condition[..<range.lowerBound]), bound = Double(condition[range.upperBound...]) ?? .nan
                let value = (object[key] as? NSNumber)?.doubleValue ?? .nan
                print("\(key) = \(value) (>= \(bound))")
                ok = ok && value >= bound
            } else if let eq = condition.firstIndex(of: "=") {
                let key = String(condition[..<eq]), expected = String(condition[condition.index(after: eq)...])
                // Arrays compare as [a,b,c].
                let value = object[key].map { ($0 as? [Any]).map { "[" + $0.map { "\($0)" }.joined(separator: ",") + "]" } ?? "\($0)" }
                    ?? "missing"
                print("\(key) = \(value) (expected \(expected))")
                ok = ok && value == expected
            } else {
                print("\(condition): \(object[condition] == nil ? "missing" : "present")")
                ok = ok && object[condition] != nil
            }
        }
        return ok
    }

    /// A trace from `ddp-train --trace`: valid JSON, and for every rank forward,
    /// backward, all-reduce and optimizer spans with non-negative times. All-reduces
    /// run on the communication track (1), but the plan's last bucket, which the main
    /// thread reduces after backward (the compute track, 0): a run of several buckets
    /// shows both.
    static func checkTrace(_ path: String, ranks: Int, pipeline: Bool = false) -> Bool {
        guard let data = try? AtomicFile.read(path),
              let object = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any],
              let events = object["traceEvents"] as? [[String: Any]] else {
            print("cannot read a trace-event JSON object from \(path)")
            return false
        }
        var ok = true
        for rank in 0..<ranks {
            let spans = events.filter { ($0["pid"] as? Int) == rank && ($0["ph"] as? String) == "X" }
            let categories = Set(spans.compactMap { $0["cat"] as? String })
            let needed: Set<String> = pipeline ? ["forward", "backward", "optimizer"] : ["forward", "backward", "allreduce", "optimizer"]
            let allreduceTracks = Set(spans.filter { ($0["cat"] as? String) == "allreduce" }.compactMap { $0["tid"] as? Int })
            let sane = spans.allSatisfy { (($0["ts"] as? Double) ?? -1) >= 0 && (($0["dur"] as? Double) ?? -1) >= 0 }
            print("rank \(rank): \(spans.count) spans, categories \(categories.sorted()), all-reduce on tracks \(allreduceTracks.sorted())")
            ok = ok && needed.isSubset(of: categories) && (pipeline || allreduceTracks == [0, 1]) && sane
        }
        let named = events.filter { ($0["name"] as? String) == "process_name" }.count
        print("\(named) process tracks")
        return ok && named == ranks
    }

    /// Compares two safetensors model files tensor by tensor.
    static func compareModels(_ a: String, _ b: String, tolerance: Float) -> Bool {
        do {
            let left = try Safetensors.decode(AtomicFile.read(a), name: a).entries
            let right = try Safetensors.decode(AtomicFile.read(b), name: b).entries
            guard left.map(\.name) == right.map(\.name), left.map(\.shape) == right.map(\.shape) else {
                print("the files hold different tensors")
                return false
            }
            var worst: Float = 0, worstName = ""
            for (x, y) in zip(left, right) {
                // Relative to the tensor's scale, so near-zero elements do not dominate.
                let scale = max(x.values.map(abs).max() ?? 0, 1e-12)
                let difference = zip(x.values, y.values).map { abs($0 - $1) }.max() ?? 0
                if difference / scale > worst { worst = difference / scale; worstName = x.name }
            }
            print("max relative difference \(worst) (\(worstName)), tolerance \(tolerance)")
            return worst <= tolerance
        } catch {
            print("error: \(error)")
            return false
        }
    }
}
