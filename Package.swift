// swift-tools-version:6.0
//
// Chorus: MPI collective training on CPU clusters.
//
// The targets form a DAG that mirrors the architecture:
//
//   CMPI ─► ChorusMPI ─► Collectives ◄─ CAtomics ───┐
//   COpenBLAS ─► NeuralNet ─┬──────────────────────┼─► Training ─► ChorusCLI ─┬─► ddp-train, pipe-train
//   CZlib ──────────────────┴─► Datasets ──────────┤                          └─► allreduce-bench, p2p-bench
//   Pipeline (schedules, partitioning; pure) ──────┘
//
// Only ChorusMPI imports CMPI, only NeuralNet imports COpenBLAS, only Datasets
// imports CZlib: everything above the shims sees Swift types.
import PackageDescription

let optimize: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

let package = Package(
    name: "Chorus",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ddp-train", targets: ["ddp-train"]),
        .executable(name: "pipe-train", targets: ["pipe-train"]),
        .executable(name: "allreduce-bench", targets: ["allreduce-bench"]),
        .executable(name: "p2p-bench", targets: ["p2p-bench"]),
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

        .target(name: "ChorusMPI", dependencies: ["CMPI"], swiftSettings: optimize),
        .target(name: "Collectives", dependencies: ["ChorusMPI", "CAtomics"], swiftSettings: optimize),
        .target(name: "NeuralNet", dependencies: ["COpenBLAS"], swiftSettings: optimize),
        .target(name: "Datasets", dependencies: ["NeuralNet", "CZlib"], swiftSettings: optimize),
        // Pipeline schedules as data, their validator, and stage partitioning: pure.
        .target(name: "Pipeline", swiftSettings: optimize),
        .target(name: "Training",
                dependencies: ["ChorusMPI", "Collectives", "NeuralNet", "Datasets", "Pipeline"],
                swiftSettings: optimize),
        // Shared option groups and the MPI-aware command runner.
        .target(name: "ChorusCLI",
                dependencies: ["Training", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                swiftSettings: optimize),
        .executableTarget(name: "ddp-train", dependencies: ["ChorusCLI"], swiftSettings: optimize),
        .executableTarget(name: "pipe-train", dependencies: ["ChorusCLI", "Pipeline"], swiftSettings: optimize),

        // Benchmarks: executables that print nccl-tests style tables and write CSV.
        .executableTarget(name: "allreduce-bench", dependencies: ["ChorusCLI"],
                          path: "Benchmarks/allreduce-bench", swiftSettings: optimize),
        // Point-to-point latency and bandwidth, reduction and copy rates: the cost model's inputs.
        .executableTarget(name: "p2p-bench", dependencies: ["ChorusCLI"],
                          path: "Benchmarks/p2p-bench", swiftSettings: optimize),

        // Multi-process checks, run under mpirun by `make test` (see Tests/mpi/run.sh).
        .executableTarget(name: "chorus-mpi-tests",
                          dependencies: ["ChorusMPI", "Collectives", "Training"],
                          path: "Tests/MPITests", swiftSettings: optimize),

        // In-process unit tests: one target per module.
        .testTarget(name: "NeuralNetTests", dependencies: ["NeuralNet"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets"]),
        .testTarget(name: "CollectivesTests", dependencies: ["Collectives"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "NeuralNet", "Datasets"]),
    ],
    // Swift 5 language mode: the numeric and MPI code passes raw buffers between a
    // training thread and a communication thread by design; strict Sendable checking
    // would force @unchecked annotations everywhere without adding safety.
    swiftLanguageModes: [.v5]
)
