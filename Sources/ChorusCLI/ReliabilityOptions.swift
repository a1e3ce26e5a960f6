import ArgumentParser
import Coordination

/// Checkpoint and watchdog flags, shared by the training tools.
public struct ReliabilityOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Directory for checkpoints (model, optimizer state, data position).", valueName: "dir"))
    public var checkpointDir: String?

    @Option(parsing: .unconditional, help: "Write a checkpoint every this many optimizer steps (needs --checkpoint-dir).")
    public var checkpointEvery: Int?

    @Option(parsing: .unconditional, help: "Keep the newest this many checkpoints.")
    public var keepCheckpoints: Int = 3

    @Flag(help: "Continue from the newest valid checkpoint in --checkpoint-dir (from the start if there is none).")
    public var resume = false

    @Flag(help: "Skip the update of a step whose gradients are NaN or infinite, instead of stopping.")
    public var skipNonfinite = false

    @Option(parsing: .unconditional,
            help: "End the job when a wait on other ranks lasts this many seconds (a stall warning at half; 0: never).")
    public var timeout: Double = Watchdog.defaultTimeoutSeconds

    static let longestTimeout = 365.0 * 24 * 3600

    public init() {}

    public func validate() throws {
        if let checkpointEvery, checkpointEvery < 1 {
            throw ValidationError("--checkpoint-every must be at least 1 (got \(checkpointEvery))")
        }
        if (checkpointEvery != nil || resume) && checkpointDir == nil {
            throw ValidationError("--checkpoint-every and --resume need --checkpoint-dir")
        }
        guard keepCheckpoints >= 1 else { throw ValidationError("--keep-checkpoints must be at least 1 (got \(keepCheckpoints))") }
        guard timeout.isFinite, timeout >= 0 else {
            throw ValidationError("--timeout must be a non-negative number of seconds (got \(timeout))")
        }
        // A year is longer than any job; beyond it the seconds stop fitting the clock's arithmetic.
        guard timeout <= Self.longestTimeout else {
            throw ValidationError("--timeout must be at most \(Int(Self.longestTimeout)) seconds (a year; 0 turns it off), got \(timeout)")
        }
    }
}
