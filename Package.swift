// swift-tools-version:6.0
//
// Chorus: MPI collective training on CPU clusters.
//
// The targets form a DAG that mirrors the architecture (docs/architecture.md):
//
//   Communication ─┬─► ChorusMPI ◄─ CMPI            (the protocol; MPI behind it)
//                  ├─► ChorusTesting                (in-process fake ranks)
//                  └─► Collectives ◄─ CAtomics, CHalfPrecision (all-reduce algorithms)
//   COpenBLAS, CConvolution ─► NeuralNet ─► Datasets ◄─ CZlib
//   NeuralNet ─► Persistence ─► Coordination ◄─ Communication
//   Collectives, Coordination ─► CommunicationHooks ─┬─► GradientCompression (fp16/bf16, PowerSGD, top-k)
//                                                    └─► DataParallel, PipelineParallel (run the hooks)
//   TrainingLoop ─► HyperparameterSearch (trials of any trainable over groups) ─► ChorusCLI
//   TrainingLoop ─► Federated (rounds of simulated clients) ─► ChorusCLI
//   Collectives, Datasets, Coordination ─► TrainingLoop ─┬─► DataParallel ───┐
//   PipelineSchedules (pure) ────────────────────────────┴─► PipelineParallel ┴─► ChorusCLI ─► tools
//
// Only ChorusMPI imports CMPI, only NeuralNet imports COpenBLAS and CConvolution, only Datasets
// imports CZlib: everything above the shims sees Swift types, and everything above
// ChorusMPI sees only the `Communicator` protocol, so it runs on fake ranks too.
import PackageDescription

let libraries = ["Communication", "ChorusMPI", "ChorusTesting", "Collectives", "NeuralNet", "Datasets", "Persistence",
                 "Coordination", "TrainingLoop", "CommunicationHooks", "DataParallel", "GradientCompression", "PipelineSchedules", "PipelineParallel", "ParameterServer", "HyperparameterSearch", "Federated", "ChorusCLI"]

let package = Package(
    name: "Chorus",
    platforms: [.macOS(.v13)],
    products: libraries.map { .library(name: $0, targets: [$0]) } + [
        .executable(name: "ddp-train", targets: ["ddp-train"]),
        .executable(name: "pipe-train", targets: ["pipe-train"]),
        .executable(name: "ps-train", targets: ["ps-train"]),
        .executable(name: "tune", targets: ["tune"]),
        .executable(name: "fed-train", targets: ["fed-train"]),
        .executable(name: "allreduce-bench", targets: ["allreduce-bench"]),
        .executable(name: "p2p-bench", targets: ["p2p-bench"]),
        .executable(name: "layer-bench", targets: ["layer-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C shims: a module map and a header of static inline wrappers, nothing else.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // Acquire/release flags for memory shared between processes.
        .target(name: "CAtomics"),
        // float32 <-> float16/bfloat16 conversions and their reduction kernels (F16C when present).
        .target(name: "CHalfPrecision"),
        // Direct convolution kernels for small kernels (AVX2 with FMA when present).
        .target(name: "CConvolution"),

        // What the layers above are written against: a group of ranks.
        .target(name: "Communication"),
        .target(name: "ChorusMPI", dependencies: ["CMPI", "Communication"]),
        // Threads standing in for ranks, for tests (of Chorus and of packages using it).
        .target(name: "ChorusTesting", dependencies: ["Communication"]),
        .target(name: "Collectives", dependencies: ["Communication", "CAtomics", "CHalfPrecision"]),

        .target(name: "NeuralNet", dependencies: ["COpenBLAS", "CConvolution"]),
        .target(name: "Datasets", dependencies: ["NeuralNet", "CZlib"]),
        // What a run writes and reads back: atomic files, safetensors, model files,
        // checkpoints, metrics JSON.
        .target(name: "Persistence", dependencies: ["NeuralNet"]),
        // What keeps ranks in step and visible: agreement, the watchdog, rank-0
        // console output, the trace timeline, test fault injection.
        .target(name: "Coordination", dependencies: ["Communication", "Persistence"]),
        // The training loop every trainer plugs a strategy into.
        .target(name: "TrainingLoop",
                dependencies: ["Communication", "Collectives", "NeuralNet", "Datasets", "Persistence", "Coordination"]),
        // What happens to gradients once they are final: the hook protocol, averaging, the meter.
        .target(name: "CommunicationHooks", dependencies: ["Collectives", "Coordination", "NeuralNet", "Persistence"]),
        // The data-parallel engine (buckets, reducer) and its strategy.
        .target(name: "DataParallel", dependencies: ["TrainingLoop", "Collectives", "CommunicationHooks"]),
        // Gradient compression as communication hooks: fp16/bf16, PowerSGD, top-k.
        .target(name: "GradientCompression", dependencies: ["CommunicationHooks", "Collectives", "Communication", "NeuralNet"]),
        // Pipeline schedules as data, their validator, and stage partitioning: pure.
        .target(name: "PipelineSchedules"),
        // Pipeline stages over point-to-point messages, and the pipeline strategy.
        .target(name: "PipelineParallel", dependencies: ["TrainingLoop", "Collectives", "CommunicationHooks", "PipelineSchedules"]),

        // Servers holding parameter ranges, workers pushing gradients: BSP, SSP, ASP.
        .target(name: "ParameterServer", dependencies: ["TrainingLoop", "Collectives", "Communication", "Coordination"]),

        // Task-parallel hyper-parameter search: groups of ranks, grid/random/ASHA, CV, results that survive.
        .target(name: "HyperparameterSearch", dependencies: ["TrainingLoop", "Datasets", "Coordination", "Persistence"]),

        // Federated averaging over simulated clients: partitions, FedAvg/FedSGD/FedProx, dropout, secure aggregation.
        .target(name: "Federated", dependencies: ["TrainingLoop", "Collectives", "Communication", "Coordination", "Datasets"]),

        // The command-line layer: option groups, the commands, flag-naming messages.
        .target(name: "ChorusCLI",
                dependencies: ["DataParallel", "GradientCompression", "PipelineParallel", "ParameterServer", "HyperparameterSearch", "Federated", "ChorusMPI",
                               .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "ddp-train", dependencies: ["ChorusCLI"]),
        .executableTarget(name: "pipe-train", dependencies: ["ChorusCLI"]),
        .executableTarget(name: "ps-train", dependencies: ["ChorusCLI"]),
        .executableTarget(name: "tune", dependencies: ["ChorusCLI"]),
        .executableTarget(name: "fed-train", dependencies: ["ChorusCLI"]),

        // Benchmarks: executables that print nccl-tests style tables and write CSV.
        .executableTarget(name: "allreduce-bench", dependencies: ["ChorusCLI"], path: "Benchmarks/allreduce-bench"),
        // Point-to-point latency and bandwidth, reduction and copy rates: the cost model's inputs.
        .executableTarget(name: "p2p-bench", dependencies: ["ChorusCLI"], path: "Benchmarks/p2p-bench"),
        // One process's training step layer by layer, against the core's sgemm and memcpy rates.
        .executableTarget(name: "layer-bench", dependencies: ["ChorusCLI"], path: "Benchmarks/layer-bench"),

        // Multi-process checks, run under mpirun by `make test` (see Tests/mpi/run.sh).
        .executableTarget(name: "chorus-mpi-tests", dependencies: ["ChorusMPI", "Collectives", "Persistence"],
                          path: "Tests/MPITests"),

        // In-process unit tests: one target per module.
        .testTarget(name: "NeuralNetTests", dependencies: ["NeuralNet"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets"]),
        .testTarget(name: "CollectivesTests", dependencies: ["Collectives", "ChorusTesting"]),
        .testTarget(name: "ChorusTestingTests", dependencies: ["ChorusTesting", "Communication"]),
        .testTarget(name: "PipelineSchedulesTests", dependencies: ["PipelineSchedules"]),
        .testTarget(name: "PersistenceTests", dependencies: ["Persistence"]),
        .testTarget(name: "TrainingLoopTests", dependencies: ["TrainingLoop", "Coordination", "ChorusTesting"]),
        .testTarget(name: "DataParallelTests", dependencies: ["DataParallel", "CommunicationHooks", "ChorusTesting"]),
        .testTarget(name: "GradientCompressionTests", dependencies: ["GradientCompression", "CommunicationHooks", "DataParallel", "ChorusTesting"]),
        .testTarget(name: "PipelineParallelTests", dependencies: ["PipelineParallel", "DataParallel", "ChorusTesting"]),
        .testTarget(name: "ParameterServerTests", dependencies: ["ParameterServer", "DataParallel", "ChorusTesting"]),
        .testTarget(name: "HyperparameterSearchTests", dependencies: ["HyperparameterSearch", "DataParallel", "ChorusTesting"]),
        .testTarget(name: "FederatedTests", dependencies: ["Federated", "ChorusTesting"]),
        .testTarget(name: "ChorusMPITests", dependencies: ["ChorusMPI"]),
        .testTarget(name: "ChorusCLITests", dependencies: ["ChorusCLI", "GradientCompression", "ChorusTesting"]),
    ],
    swiftLanguageModes: [.v6]
)
