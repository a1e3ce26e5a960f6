import ChorusCLI
import ChorusTesting
import GradientCompression
import Communication
import Foundation
import Persistence
import XCTest

/// Whole command lines, parsed and run in-process on fake ranks (swift-argument-
/// parser's habit of testing commands by their arguments): validation messages,
/// help, disagreeing ranks, and whole training runs against their oracle.
final class CommandLineTests: XCTestCase {
    /// Runs `arguments(rank)` as `Command` on `ranks` fake ranks; each rank's outcome.
    func execute<Command: MPICommand>(_ command: Command.Type, ranks: Int,
                                      _ arguments: @escaping @Sendable (Int) -> [String]) -> [CommandOutcome] {
        InProcessGroup(size: ranks).run(timeout: 600) { rank in Command.execute(arguments(rank.rank), world: rank) }
    }

    func testAnInvalidFlagFailsOnEveryRankAndRankZeroSaysWhy() {
        let outcomes = execute(DDPTrain.self, ranks: 3) { _ in ["--batch-size", "0"] }
        XCTAssertEqual(outcomes.map(\.exitCode), [64, 64, 64])
        XCTAssertTrue(outcomes[0].error?.contains("--batch-size must be at least 1 (got 0)") ?? false, "\(outcomes[0])")
        XCTAssertNil(outcomes[1].error, "one message, not one per rank")
    }

    func testABadFlagOnOneRankOnlyStopsEveryRankAndThatRankSaysWhy() {
        // An MPMD launch (or a per-rank wrapper) can give one rank other flags.
        let outcomes = execute(DDPTrain.self, ranks: 3) { rank in
            ["--dataset", "synthetic", "--steps", "2"] + (rank == 1 ? ["--batch-size", "0"] : [])
        }
        XCTAssertEqual(outcomes.map(\.exitCode), [64, 64, 64])
        XCTAssertNil(outcomes[0].error)
        XCTAssertTrue(outcomes[1].error?.contains("--batch-size must be at least 1") ?? false, "\(outcomes[1])")
        let help = execute(PipeTrain.self, ranks: 2) { rank in rank == 1 ? ["--help"] : ["--stages", "2"] }
        XCTAssertEqual(help.map(\.exitCode), [0, 0], "help on one rank ends every rank cleanly")
        XCTAssertTrue(help[1].output?.contains("--microbatches") ?? false)
    }

    func testValidationMessagesNameTheFlags() {
        let cases: [([String], String)] = [
            (["--lr", "-1"], "--lr must be a positive number"),
            (["--model", "mlp", "--hidden", "512,x"], "--hidden must be positive integers"),
            (["--optimizer", "nesterov", "--momentum", "0"], "--optimizer nesterov needs --momentum above 0"),
            (["--optimizer", "sgd", "--momentum", "0.9"], "--momentum 0.9 needs --optimizer momentum or nesterov"),
            (["--optimizer", "adam", "--momentum", "0.5"], "--optimizer adam has none"),
            (["--checkpoint-every", "5"], "--checkpoint-every and --resume need --checkpoint-dir"),
            (["--timeout", "-1"], "--timeout must be a non-negative number"),
            (["--bucket-mb", "0"], "--bucket-mb must be a positive number"),
            (["--model", "resnet"], "--model"),
        ]
        for (arguments, message) in cases {
            let outcome = execute(DDPTrain.self, ranks: 1) { _ in arguments }[0]
            XCTAssertEqual(outcome.exitCode, 64, "\(arguments)")
            XCTAssertTrue(outcome.error?.contains(message) ?? false, "\(arguments): \(outcome.error ?? "no message")")
        }
        let pipe = execute(PipeTrain.self, ranks: 1) { _ in ["--batch-size", "10", "--microbatches", "4"] }[0]
        XCTAssertTrue(pipe.error?.contains("--batch-size 10 is not divisible by --microbatches 4") ?? false, "\(pipe)")
    }

    func testCompressionFlagsAreCheckedAndNameThemselves() {
        let cases: [([String], String)] = [
            (["--compress", "zip"], "--compress must be none, fp16, bf16, powersgd:R or topk:F (got zip)"),
            (["--compress", "powersgd"], "--compress powersgd needs a rank from 1 to 64"),
            (["--compress", "powersgd:65"], "--compress powersgd needs a rank from 1 to 64"),
            (["--compress", "topk:0"], "--compress topk needs a fraction in (0, 1]"),
            (["--compress", "bf16:3"], "--compress bf16 takes no argument"),
            (["--compress", "fp16:"], "--compress fp16 takes no argument"),
            (["--compress", "fp16", "--no-warm-start"], "--no-warm-start applies to --compress powersgd:R only"),
            (["--compress", "topk:0.1", "--powersgd-start-step", "3"], "--powersgd-start-step applies to --compress powersgd:R only"),
            (["--compress", "fp16", "--no-error-feedback"], "--no-error-feedback applies to --compress powersgd:R and topk:F only"),
            (["--compress", "powersgd:2", "--powersgd-min-ratio", "0.5"], "--powersgd-min-ratio must be a number of at least 1"),
            (["--compress", "bf16", "--allreduce", "mpi"], "MPI_Allreduce cannot add 16-bit floats"),
        ]
        for (arguments, message) in cases {
            let outcome = execute(DDPTrain.self, ranks: 1) { _ in arguments }[0]
            XCTAssertEqual(outcome.exitCode, 64, "\(arguments)")
            XCTAssertTrue(outcome.error?.contains(message) ?? false, "\(arguments): \(outcome.error ?? "no message")")
        }
        let parsed = try! CompressionOptions.parse(["--compress", "powersgd:4", "--powersgd-start-step", "3", "--no-warm-start"])
        guard case .powerSGD(let settings) = try! parsed.compression(seed: 9) else { return XCTFail("not PowerSGD") }
        XCTAssertEqual(settings.rank, 4)
        XCTAssertEqual(settings.start, .afterStep(3))
        XCTAssertFalse(settings.warmStart)
        XCTAssertTrue(settings.errorFeedback)
        XCTAssertEqual(settings.seed, 9)
        let defaults = try! CompressionOptions.parse(["--compress", "powersgd:2"])
        guard case .powerSGD(let standard) = try! defaults.compression(seed: 0) else { return XCTFail("not PowerSGD") }
        XCTAssertEqual(standard.start, .afterFraction(0.1), "the command line warms up for 10% of the run")
        XCTAssertEqual(try! CompressionOptions.parse(["--compress", "topk:0.25"]).compression(seed: 0), .topK(TopKSettings(fraction: 0.25)))
    }

    func testAnFp16OverflowNamesFloat16sRangeAndBf16() {
        let run = ["--model", "mlp", "--hidden", "256,64", "--dataset", "synthetic", "--steps", "10", "--optimizer", "sgd", "--lr", "30",
                   "--timeout", "0"]
        let outcomes = execute(DDPTrain.self, ranks: 2) { _ in run + ["--compress", "fp16"] }
        XCTAssertEqual(outcomes.map(\.exitCode), [1, 1])
        XCTAssertTrue(outcomes[0].error?.contains("a gradient above 65,504 overflows, and --compress bf16 keeps float32's range") ?? false,
                      "\(outcomes[0])")
        let wide = execute(DDPTrain.self, ranks: 2) { _ in run + ["--compress", "bf16"] }
        XCTAssertEqual(wide.map(\.exitCode), [0, 0], "bfloat16 has float32's range: \(wide[0])")
    }

    func testRanksStartedWithDifferentCompressionStopNamingTheFlag() {
        let outcomes = execute(DDPTrain.self, ranks: 2) { rank in
            ["--dataset", "synthetic", "--steps", "2", "--timeout", "0", "--compress", rank == 0 ? "fp16" : "bf16"]
        }
        XCTAssertEqual(outcomes.map(\.exitCode), [1, 1])
        XCTAssertTrue(outcomes[0].error?.contains("ranks disagree on --compress and its settings: rank 0 has fp16, rank 1 has bf16") ?? false,
                      "\(outcomes[0])")
    }

    func testHelpListsTheFlagsOnceAndSucceeds() {
        let outcomes = execute(DDPTrain.self, ranks: 2) { _ in ["--help"] }
        XCTAssertEqual(outcomes.map(\.exitCode), [0, 0])
        XCTAssertTrue(outcomes[0].output?.contains("--bucket-mb") ?? false)
        XCTAssertNil(outcomes[1].output)
        let pipe = execute(PipeTrain.self, ranks: 1) { _ in ["--help"] }[0]
        XCTAssertTrue(pipe.output?.contains("--microbatches") ?? false)
    }

    func testRanksStartedWithDifferentFlagsStopNamingTheFlag() {
        let outcomes = execute(PipeTrain.self, ranks: 2) { rank in
            ["--stages", "2", "--dataset", "synthetic", "--microbatches", rank == 0 ? "4" : "2", "--timeout", "0"]
        }
        XCTAssertEqual(outcomes.map(\.exitCode), [1, 1])
        XCTAssertTrue(outcomes[0].error?.contains("ranks disagree on --microbatches: rank 0 has 4, rank 1 has 2") ?? false,
                      "\(outcomes[0])")
    }

    func testAPipelineThatDoesNotDivideTheRanksIsRefusedNamingTheFlag() {
        let outcomes = execute(PipeTrain.self, ranks: 4) { _ in ["--stages", "3", "--dataset", "synthetic"] }
        XCTAssertEqual(Set(outcomes.map(\.exitCode)), [1])
        XCTAssertTrue(outcomes[0].error?.contains("4 ranks cannot form pipelines of --stages 3") ?? false, "\(outcomes[0])")
    }

    func testParameterServerCommandLinesNameTheirFlags() {
        let flags: [([String], Int32, String)] = [
            (["--servers", "3"], 1, "--servers 3 on 3 ranks leaves no worker: run at least 4 ranks (mpirun -n), or fewer --servers"),
            (["--servers", "0"], 64, "--servers must be at least 1 (got 0)"),
            (["--staleness", "2"], 64, "--staleness applies to --mode ssp only (got --mode bsp)"),
            (["--mode", "ssp", "--staleness", "-1"], 64, "--staleness must be at least 0 (got -1)"),
            (["--slow-worker", "0:3"], 1, "--slow-worker names rank 0, which is not a worker: workers are ranks 1..2"),
            (["--slow-worker", "two:3"], 64, "--slow-worker takes R:F, two numbers like 2:3"),
            (["--slow-worker", "1.5:3"], 64, "--slow-worker's rank must be a whole number"),
            (["--straggle", "0.2:0.5"], 64, "--straggle's factor must be at least 1 (got '0.2:0.5')"),
            (["--straggle", "0.2"], 64, "--straggle takes P:F, two numbers like 0.2:4"),
            (["--eval-every", "-2"], 64, "--eval-every must not be negative (got -2)"),
        ]
        for (arguments, code, message) in flags {
            let outcomes = execute(PSTrain.self, ranks: 3) { _ in ["--dataset", "synthetic", "--steps", "2", "--timeout", "0"] + arguments }
            XCTAssertEqual(Set(outcomes.map(\.exitCode)), [code], "\(arguments)")
            XCTAssertTrue(outcomes[0].error?.contains(message) ?? false, "\(arguments): \(outcomes[0])")
            XCTAssertEqual(outcomes.dropFirst().compactMap(\.error), [], "one message, from rank 0")
        }
        let disagreeing = execute(PSTrain.self, ranks: 3) { rank in
            ["--dataset", "synthetic", "--steps", "2", "--timeout", "0", "--mode", rank == 2 ? "asp" : "bsp"]
        }
        XCTAssertTrue(disagreeing[0].error?.contains("ranks disagree on --mode/--staleness: rank 0 has bsp, rank 2 has asp") ?? false,
                      "\(disagreeing[0])")
        let trained = execute(PSTrain.self, ranks: 3) { _ in ["--dataset", "synthetic", "--model", "mlp", "--hidden", "8",
                                                              "--steps", "3", "--timeout", "0", "--mode", "ssp", "--servers", "2"] }
        XCTAssertEqual(trained.map(\.exitCode), [0, 0, 0], "\(trained)")
    }

    func testDataParallelOnTwoRanksEqualsOneProcessOnTheGlobalBatch() throws {
        let directory = NSTemporaryDirectory() + "chorus-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let common = ["--model", "mlp", "--hidden", "32", "--dataset", "synthetic", "--steps", "6", "--momentum", "0",
                      "--seed", "5", "--threads", "1", "--log-every", "3"]
        let one = execute(DDPTrain.self, ranks: 1) { _ in common + ["--batch-size", "16", "--save-model", directory + "/one.safetensors"] }
        let two = execute(DDPTrain.self, ranks: 2) { _ in
            common + ["--batch-size", "8", "--save-model", directory + "/two.safetensors", "--metrics-json", directory + "/two.json"]
        }
        XCTAssertEqual(one.map(\.exitCode) + two.map(\.exitCode), [0, 0, 0], "\(one) \(two)")
        let a = try Safetensors.decode(AtomicFile.read(directory + "/one.safetensors")).entries
        let b = try Safetensors.decode(AtomicFile.read(directory + "/two.safetensors")).entries
        XCTAssertEqual(a.map(\.name), b.map(\.name))
        for (x, y) in zip(a, b) {
            let scale = x.values.map(abs).max() ?? 1
            let worst = zip(x.values, y.values).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst / scale, 1e-5, x.name)
        }
        let metrics = try JSONSerialization.jsonObject(with: Data(AtomicFile.read(directory + "/two.json"))) as! [String: Any]
        XCTAssertEqual(metrics["ranks"] as? Int, 2)
        XCTAssertEqual(metrics["steps"] as? Int, 6)
        XCTAssertEqual(metrics["global_batch"] as? Int, 16)
    }
}
