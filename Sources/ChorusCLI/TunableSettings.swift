import ArgumentParser
import Foundation
import HyperparameterSearch

/// The `ddp-train` settings a search may vary, each with its flag's kind (how a
/// random draw is made and how a value is written) and its value in a parsed
/// `ddp-train` (the base configuration's, for the default trial).
struct TunableSetting: Sendable {
    enum Kind {
        case real, integer, text
        /// Layer widths: `256/256` on the command line (a comma separates values), `256,256` for the flag.
        case widths
    }

    let name: String
    let kind: Kind
    let value: @Sendable (DDPTrain) -> String

    static let all: [TunableSetting] = [
        TunableSetting(name: "lr", kind: .real) { "\($0.common.optimization.lr)" },
        TunableSetting(name: "momentum", kind: .real) { "\($0.common.optimization.momentum)" },
        TunableSetting(name: "weight-decay", kind: .real) { "\($0.common.optimization.optimizerSettings.weightDecay)" },
        TunableSetting(name: "batch-size", kind: .integer) { "\($0.batchSize)" },
        TunableSetting(name: "optimizer", kind: .text) { $0.common.optimization.optimizer.rawValue },
        TunableSetting(name: "hidden", kind: .widths) { $0.common.subject.hidden },
        TunableSetting(name: "epochs", kind: .integer) { "\($0.common.epochs)" },
        TunableSetting(name: "warmup-steps", kind: .integer) { "\($0.common.optimization.warmupSteps)" },
        TunableSetting(name: "beta1", kind: .real) { "\($0.common.optimization.beta1)" },
        TunableSetting(name: "beta2", kind: .real) { "\($0.common.optimization.beta2)" },
        TunableSetting(name: "lr-decay", kind: .text) { $0.common.optimization.lrDecay.rawValue },
        TunableSetting(name: "lr-gamma", kind: .real) { "\($0.common.optimization.lrGamma)" },
        TunableSetting(name: "accumulate", kind: .integer) { "\($0.accumulate)" },
    ]

    static var names: String { all.map(\.name).joined(separator: ", ") }

    static func named(_ name: String) throws -> TunableSetting {
        guard let setting = all.first(where: { $0.name == name }) else {
            throw ValidationError("'\(name)' is not a setting tune can search; it can search \(names)")
        }
        return setting
    }

    /// The value as the results file writes it: numbers in one canonical form
    /// (0.050 and 0.05 are one configuration); text, and numbers that do not parse
    /// (rejected later with the flag's own message), as given.
    func canonical(_ value: String) -> String {
        switch kind {
        case .real: Float(value).map { "\($0)" } ?? value
        case .integer: Int(value).map { "\($0)" } ?? value
        case .text: value
        case .widths: value.replacingOccurrences(of: "/", with: ",")
        }
    }
}
