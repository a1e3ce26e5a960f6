import ArgumentParser
import Communication
import GradientCompression
import PipelineParallel
import PipelineSchedules
import TrainingLoop

extension ScheduleKind: ExpressibleByArgument {}

/// `mpirun -n 3 pipe-train --stages 3`: pipeline-parallel training.
public struct PipeTrain: MPICommand {
    public static let configuration = CommandConfiguration(
        commandName: "pipe-train",
        abstract: "Pipeline-parallel training: the model's layers are split into stages on different ranks.",
        discussion: """
            Run under MPI with a multiple of --stages ranks, e.g. `mpirun -n 3 pipe-train --stages 3 \
            --microbatches 4`. With 2·S ranks, two data-parallel replicas of the pipeline average their \
            gradients stage by stage. `pipe-train --stages 3 --microbatches 4 --print-schedule` prints \
            the schedule as a time x stage grid and exits.
            """)

    @OptionGroup var common: CommonTrainingOptions
    @OptionGroup var reliability: ReliabilityOptions
    @OptionGroup var compression: CompressionOptions

    @Option(parsing: .unconditional, help: "Pipeline stages (ranks per pipeline).")
    var stages: Int = 2

    @Option(parsing: .unconditional, help: "Micro-batches per batch (1: model parallelism without pipelining).")
    var microbatches: Int = 4

    @Option(help: "Schedule: gpipe (all forwards, then all backwards) or 1f1b (one forward, one backward).")
    var schedule: ScheduleKind = .oneFOneB

    @Option(help: ArgumentHelp("First layer index of stages 1, 2, ... (default: balance by estimated cost).",
                               valueName: "i1,i2,..."))
    var split: String?

    @Option(parsing: .unconditional, help: "Samples one pipeline processes per optimizer step.")
    var batchSize: Int = 64

    @Flag(help: "Print the schedule as a time x stage grid and exit.")
    var printSchedule = false

    func splitPoints() throws -> [Int]? {
        guard let split else { return nil }
        let parts = split.split(separator: ",", omittingEmptySubsequences: false)
        let points = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard points.count == parts.count else {
            throw ValidationError("--split must be layer indices separated by commas, like 3,7 (got '\(split)')")
        }
        return points
    }

    public func validate() throws {
        guard stages >= 1 else { throw ValidationError("--stages must be at least 1 (got \(stages))") }
        guard microbatches >= 1 else { throw ValidationError("--microbatches must be at least 1 (got \(microbatches))") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
        guard batchSize % microbatches == 0 else {
            throw ValidationError("--batch-size \(batchSize) is not divisible by --microbatches \(microbatches)")
        }
        if let points = try splitPoints(), points.count != stages - 1 {
            throw ValidationError("--split needs \(stages - 1) layer indices for \(stages) stages (got \(points.count))")
        }
    }

    public init() {}

    public func run(world: any Communicator) throws {
        if printSchedule {
            if world.rank == 0 { print(PipelineSchedule(schedule, stages: stages, microbatches: microbatches).grid()) }
            return
        }
        let options = PipelineOptions(model: try common.modelDescription(), batchSize: batchSize, microbatches: microbatches,
                                      stages: stages, split: try splitPoints(), schedule: schedule)
        let loop = common.loopOptions(name: "pipe-train", reliability: reliability)
        let compressed = try compression.compression(seed: loop.seed)
        if compressed != .none && world.size / stages < 2 {
            throw ValidationError("--compress \(compression.compress) compresses the all-reduce across pipeline replicas; "
                                  + "\(world.size) rank\(world.size == 1 ? "" : "s") with --stages \(stages) make one pipeline and nothing to all-reduce")
        }
        let strategy = PipelineStrategy(options: options, communicator: world, hook: compressed.hook())
        _ = try Float16Overflow.explaining(compressed) { try TrainingLoop(strategy: strategy, options: loop, communicator: world).run() }
    }
}
