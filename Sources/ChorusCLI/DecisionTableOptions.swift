import ArgumentParser
import Collectives
import Communication
import Coordination
import Foundation
import Persistence

/// `--allreduce-table FILE` (or `CHORUS_ALLREDUCE_TABLE`): the measured choices `auto`
/// reads (`AllreduceDecisionTable`, written by `allreduce-bench --calibrate`).
public struct DecisionTableOptions: ParsableArguments {
    public init() {}

    static let environment = "CHORUS_ALLREDUCE_TABLE"

    @Option(help: ArgumentHelp("What --allreduce auto runs per message size, measured by allreduce-bench --calibrate "
                               + "(default: $\(Self.environment), else the built-in rules).", valueName: "file"))
    var allreduceTable: String?

    public var path: String? {
        allreduceTable ?? ProcessInfo.processInfo.environment[Self.environment].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Every rank reads its table; a rank that cannot ends every rank. Collective even
    /// without a table (one rank may have been given one and another not); that they
    /// read the same rules is agreed where the all-reduces start (`DataParallelEngine`).
    public func load(on world: any Communicator) throws -> AllreduceDecisionTable? {
        try Self.read(path, on: world)
    }

    /// Reads the table at `path` on every rank, together (a rank that cannot ends every
    /// rank); nil without a path, or when the file is absent and `absentIsNone`.
    public static func read(_ path: String?, on world: any Communicator, absentIsNone: Bool = false) throws
        -> AllreduceDecisionTable? {
        try world.together("reading the all-reduce table \(path ?? "(none)")") {
            guard let path, !(absentIsNone && !FileManager.default.fileExists(atPath: path)) else { return nil }
            let bytes: [UInt8]
            do { bytes = try AtomicFile.read(path) } catch {
                throw ValidationError("cannot read \(path) (\(error))")
            }
            return try AllreduceDecisionTable(text: String(decoding: bytes, as: UTF8.self))
        }
    }
}
