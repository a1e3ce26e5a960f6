// swift-tools-version:6.0
//
// A package outside Chorus that uses it as a library: its own layer and model,
// trained data-parallel with Chorus's engine in its own loop. `make test` builds it
// and runs it on 2 ranks: `mpirun -n 2 .build/release/custom-ddp`.
import PackageDescription

let package = Package(
    name: "ChorusExamples",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "Chorus", path: ".."),
    ],
    targets: [
        .executableTarget(name: "custom-ddp", dependencies: [
            .product(name: "ChorusMPI", package: "Chorus"),
            .product(name: "DataParallel", package: "Chorus"),
            .product(name: "Datasets", package: "Chorus"),
            .product(name: "NeuralNet", package: "Chorus"),
            .product(name: "TrainingLoop", package: "Chorus"),
        ]),
    ]
)
