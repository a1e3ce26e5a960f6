import ArgumentParser
import ChorusCLI
import ChorusMPI
import Communication
import Collectives
import Foundation
import Coordination
import Persistence

/// `mpirun -n P allreduce-bench`: every all-reduce algorithm against MPI_Allreduce,
/// size by size, in the style of nccl-tests.
@main
struct AllreduceBench: MPICommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce-bench",
        abstract: "Measure Chorus's all-reduce algorithms against MPI_Allreduce over a range of message sizes.",
        discussion: """
            For each size (doubling from --min-bytes to --max-bytes) every algorithm is first checked \
            against MPI_Allreduce on integer-valued floats, then timed in interleaved rounds, so slow drift \
            of the machine affects all of them alike. Times are per call, from each rank's median round (one \
            round that lost its core does not stand for the size); bandwidths use the slowest rank's \
            time. busbw = algbw * 2(p-1)/p, the bytes each rank's link carries in a ring (nccl-tests' \
            convention), comparable across rank counts. The `memcpy` row is one core copying the same \
            number of bytes while the other ranks do the same: the ceiling for any reduction that touches \
            the data.
            """)

    @Option(help: "Comma-separated algorithms: \(AllreduceAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")).")
    var algorithms: String = "shared-memory,ring,hierarchical,recursive-doubling,mpi,auto"

    @OptionGroup var messageSizes: MessageSizeOptions

    @Option(parsing: .unconditional, help: "Timed calls per algorithm and size (default: more for small sizes).")
    var iterations: Int?

    @Option(parsing: .unconditional, help: "Untimed calls per algorithm and size before timing.")
    var warmup: Int = 3

    @Option(parsing: .unconditional, help: "Interleaved rounds the timed calls are split into; each rank reports its median round.")
    var rounds: Int = 5

    @Option(help: "Write the results as CSV to this file (atomically).")
    var csv: String?

    @Option(parsing: .unconditional,
            help: "Treat each block of this many consecutive ranks as one node (default: ranks sharing memory; also CHORUS_RANKS_PER_NODE).")
    var ranksPerNode: Int?

    @Option(help: "Segment size of the pipelined ring (tuning; the same on every rank).")
    var segmentBytes = ByteCount(bytes: RingSchedule.defaultSegmentBytes)

    @Flag(help: "Leave out the memcpy ceiling row.")
    var noMemcpy = false

    @OptionGroup var decisionTable: DecisionTableOptions

    @Option(help: ArgumentHelp("Measure every algorithm (MPI_Allreduce included) at each size and write the fastest per size "
                               + "for this rank count and node layout to this decision table (rules for other layouts in "
                               + "the file are kept), for --allreduce-table.", valueName: "file"))
    var calibrate: String?

    func parsedAlgorithms() throws -> [AllreduceAlgorithm] {
        let names = algorithms.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let parsed = try names.map { name in
            guard let algorithm = AllreduceAlgorithm(rawValue: name) else {
                throw ValidationError("--algorithms: unknown algorithm '\(name)' (choose from \(AllreduceAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return algorithm
        }
        guard !parsed.isEmpty else { throw ValidationError("--algorithms must name at least one algorithm") }
        if let twice = parsed.first(where: { algorithm in parsed.filter { $0 == algorithm }.count > 1 }) {
            throw ValidationError("--algorithms names \(twice.rawValue) more than once")
        }
        return parsed
    }

    func validate() throws {
        _ = try parsedAlgorithms()
        if let iterations, iterations < 1 { throw ValidationError("--iterations must be at least 1 (got \(iterations))") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative (got \(warmup))") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1 (got \(rounds))") }
        guard segmentBytes.bytes >= 4 else { throw ValidationError("--segment-bytes must be at least 4") }
        if let ranksPerNode, ranksPerNode < 1 { throw ValidationError("--ranks-per-node must be at least 1 (got \(ranksPerNode))") }
    }

    // MPI_THREAD_MULTIPLE, as ddp-train runs the all-reduce (the default level).

    func run(world: any Communicator) throws {
        // Before measuring, not after: a sweep takes minutes.
        for file in [csv, calibrate].compactMap({ $0 }) {
            try world.together("checking \(file)") { if world.rank == 0 { try AtomicFile.checkWritable(file: file) } }
        }
        // A calibration adds its rules to the file's, if there is one.
        let existing = try DecisionTableOptions.read(calibrate, on: world, absentIsNone: true)
        // A calibration measures the built-in choices, not an earlier table's.
        let table = calibrate == nil ? try decisionTable.load(on: world) : nil
        let allreducer = Allreducer(world: world, ranksPerNode: ranksPerNode, ringSegmentBytes: segmentBytes.bytes,
                                    decisionTable: table)
        try world.agree(on: [ConfigurationField(AllreduceDecisionTable.agreementField, AllreduceDecisionTable.summary(table))])
        let calibration = Calibration(layout: allreducer.layout, sharedMemory: allreducer.nodeMemory != nil)
        let bench = AllreduceBenchmark(world: world, allreducer: allreducer,
                                       algorithms: calibrate == nil ? try parsedAlgorithms() : calibration.candidates,
                                       warmup: warmup, rounds: rounds, fixedIterations: iterations, includeMemcpy: !noMemcpy)
        let report = BenchmarkReport(world: world, layout: bench.allreducer.layout)
        report.printHeader(maxBytes: messageSizes.maxBytes.bytes)
        var rows: [BenchmarkRow] = []
        for bytes in messageSizes.sizes {
            let measured = bench.measure(bytes: bytes)
            report.printRows(measured)
            rows += measured
        }
        report.printSummary(rows)
        if let csv {
            try world.together("writing \(csv)") {
                if world.rank == 0 { try AtomicFile.write(BenchmarkReport.csv(rows), to: csv) }
            }
            if world.rank == 0 { print("# wrote \(csv)") }
        }
        // Every rank holds the same verdicts (each row's is agreed), so all stop together;
        // a calibration whose algorithms gave wrong sums must not become a table.
        let correct = rows.allSatisfy(\.correct)
        if let calibrate, correct {
            let written = calibration.table(rows, ranks: world.size, existing: existing,
                                            host: ProcessInfo.processInfo.hostName)
            try world.together("writing \(calibrate)") { if world.rank == 0 { try AtomicFile.write(written.text, to: calibrate) } }
            if world.rank == 0 { print("# wrote \(calibrate):\n" + written.text, terminator: "") }
        }
        if !correct { throw IncorrectResults() }
    }
}

/// An algorithm's result differed from MPI_Allreduce's.
struct IncorrectResults: Error, CustomStringConvertible {
    var description: String { "some results differ from MPI_Allreduce (see the correct column)" }
}
