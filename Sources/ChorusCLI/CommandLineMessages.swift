import Coordination
import DataParallel
import Federated
import Datasets
import NeuralNet
import ParameterServer
import PipelineParallel
import PipelineSchedules
import TrainingLoop

/// Library errors in the terms of the command line: the library names settings in
/// its own words ("the micro-batches per batch"); a user of `pipe-train` set them
/// with flags (`--microbatches`), so messages name the flags.
public enum CommandLineMessages {
    /// The flags that set each agreed configuration field.
    static let flags: [String: String] = [
        TrainingField.seed: "--seed",
        TrainingField.runLength: "--epochs/--steps",
        TrainingField.dataset: "--dataset/--data-dir",
        TrainingField.checkpoints: "--checkpoint-dir/--checkpoint-every/--resume",
        TrainingField.logging: "--log-every",
        TrainingField.evaluation: "--eval-every",
        TrainingField.nonFiniteGradients: "--skip-nonfinite",
        PipelineField.stages: "--stages/--split",
        TrainingField.outputs: "--save-model/--metrics-json/--trace/--rounds-csv",
        DataParallelField.batchPerRank: "--batch-size",
        DataParallelField.accumulation: "--accumulate",
        DataParallelField.algorithm: "--allreduce",
        DataParallelField.nodes: "--ranks-per-node",
        DataParallelField.decisionTable: "--allreduce-table (or CHORUS_ALLREDUCE_TABLE)",
        DataParallelField.bucketCap: "--bucket-mb",
        DataParallelField.overlap: "--no-overlap",
        DataParallelField.hook: "--compress and its settings",
        PipelineField.microbatches: "--microbatches",
        PipelineField.schedule: "--schedule",
        PipelineField.batchSize: "--batch-size",
        ParameterServerField.servers: "--servers",
        ParameterServerField.consistency: "--mode/--staleness",
        ParameterServerField.batchPerWorker: "--batch-size",
        ParameterServerField.stragglers: "--slow-worker/--straggle",
        FederatedField.clients: "--clients/--fraction/--server-rank-only",
        FederatedField.algorithm: "--algorithm",
        FederatedField.localTraining: "--local-epochs/--local-batch/--mu",
        FederatedField.server: "--server-lr/--server-momentum",
        FederatedField.partition: "--partition/--min-client-size",
        FederatedField.dropout: "--client-dropout/--min-clients",
        FederatedField.stragglers: "--slow-clients/--round-deadline",
        FederatedField.secureAggregation: "--secure-aggregation/--secure-clip",
    ]

    public static func describe(_ error: any Error) -> String {
        switch error {
        case let mismatch as ConfigurationMismatch:
            guard let field = mismatch.field else { return "\(mismatch)" }
            return "ranks disagree on \(flags[field] ?? field): rank \(mismatch.firstRank) has \(mismatch.firstValue), "
                + "rank \(mismatch.otherRank) has \(mismatch.otherValue); start every rank with the same flags and data"
        case let failure as GroupFailure:
            return failure.error.map(describe) ?? "\(failure)"
        case let gradient as NonFiniteGradient:
            return "\(gradient); lower --lr, or pass --skip-nonfinite to skip such steps"
        case let overflow as Float16Overflow:
            return describe(overflow.underlying) + "; with --compress fp16 a gradient above 65,504 overflows, and --compress bf16 "
                + "keeps float32's range"
        case let accumulation as AccumulationExceedsEpoch:
            return "--accumulate \(accumulation.accumulate) needs \(accumulation.accumulate) global batches of "
                + "\(accumulation.globalBatch) per epoch; \(accumulation.dataset) has \(accumulation.stepsPerEpoch)"
        case let setup as PipelineSetupError:
            switch setup {
            case .ranksNotMultipleOfStages(let ranks, let stages):
                return "\(ranks) ranks cannot form pipelines of --stages \(stages): the number of ranks must be a multiple of the stages"
            case .batchNotDivisible(let batch, let microbatches):
                return "--batch-size \(batch) is not divisible by --microbatches \(microbatches)"
            case .splitStageCount(let given, let stages):
                return "--split gives \(given) stages but --stages is \(stages)"
            }
        case let roles as RolesDoNotFit:
            return roles.servers < 1 ? "--servers must be at least 1"
                : "--servers \(roles.servers) on \(roles.ranks) rank\(roles.ranks == 1 ? "" : "s") leaves no worker: "
                    + "run at least \(roles.servers + 1) ranks (mpirun -n), or fewer --servers"
        case let straggler as StragglerIsNotAWorker:
            return "--slow-worker names rank \(straggler.rank), which is not a worker: workers are ranks "
                + "\(straggler.servers)..\(straggler.ranks - 1) (the first --servers \(straggler.servers) serve)"
        case let few as TooFewParameters:
            return "\(few); choose fewer --servers"
        case let conflict as OutputConflict:
            let names = ["model": "--save-model", "metrics": "--metrics-json", "trace": "--trace", "results": "--results", "rounds": "--rounds-csv"]
            return "\(conflict.outputs.map { names[$0] ?? $0 }.joined(separator: " and ")) name the same file \(conflict.path)"
        case let foreign as ForeignCheckpoints:
            return "--checkpoint-dir \(foreign)"
        case let overflow as LearningRateOverflow:
            return "--lr \(overflow.rate) scaled by \(overflow.scale) (--lr-scale linear) is not a finite number"
        case let shortfall as MemoryShortfall:
            return "\(shortfall); choose a smaller model (--hidden) or --batch-size, or fewer ranks per node"
        case let tooLarge as ModelTooLarge:
            return "\(tooLarge); choose smaller --hidden widths"
        case let missing as MissingDatasetFile:
            return missing.describe(directory: "--data-dir") + (missing.inDefaultDirectory ? " (`make deps` installs it too)" : "")
        case let partition as PartitionError:
            switch partition {
            case .noStages: return "--stages must be at least 1"
            case .tooFewLayers: return "\(partition)"
            case .invalidStarts(let starts, let layers):
                return "--split \(PartitionError.list(starts)) \(PartitionError.rule(layers))"
            }
        default:
            return "\(error)"
        }
    }
}
