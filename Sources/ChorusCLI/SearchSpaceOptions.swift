import ArgumentParser
import Foundation
import HyperparameterSearch

/// The flags that describe what a search tries.
struct SearchSpaceOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A grid dimension (repeatable; the search tries the Cartesian product).", valueName: "name=v1,v2,..."))
    var grid: [String] = []

    @Option(parsing: .unconditional, help: "Random search: this many seeded draws from --uniform, --log-uniform, --choice (and the grid's points).")
    var random: Int?

    @Option(help: ArgumentHelp("Draw uniformly from [lo, hi] (integers for integer settings; repeatable).", valueName: "name=lo:hi"))
    var uniform: [String] = []

    @Option(help: ArgumentHelp("Draw log-uniformly from [lo, hi], lo > 0 (repeatable).", valueName: "name=lo:hi"))
    var logUniform: [String] = []

    @Option(help: ArgumentHelp("Draw one of the values, each equally likely (repeatable).", valueName: "name=a,b,..."))
    var choice: [String] = []

    /// The space, in the library's terms; every name checked against what tune can search.
    func space() throws -> SearchSpace {
        let grid = try self.grid.map { text -> GridDimension in
            let (setting, values) = try Self.split(text, flag: "--grid", separator: ",")
            return GridDimension(name: setting.name, values: values.map(setting.canonical))
        }
        var distributions = try choice.map { text -> Distribution in
            let (setting, values) = try Self.split(text, flag: "--choice", separator: ",")
            return Distribution(name: setting.name, shape: .choice(values.map(setting.canonical)))
        }
        for (flag, texts, log) in [("--uniform", uniform, false), ("--log-uniform", logUniform, true)] {
            for text in texts {
                let (setting, bounds) = try Self.split(text, flag: flag, separator: ":")
                guard setting.kind == .real || setting.kind == .integer else { throw ValidationError("\(flag) \(text): \(setting.name) is not a number; use --choice") }
                guard bounds.count == 2, let low = Double(bounds[0]), let high = Double(bounds[1]) else {
                    throw ValidationError("\(flag) needs name=lo:hi with two numbers (got '\(text)')")
                }
                let integer = setting.kind == .integer
                distributions.append(Distribution(name: setting.name, shape: log ? .logUniform(low: low, high: high, integer: integer)
                                                                                 : .uniform(low: low, high: high, integer: integer)))
            }
        }
        return SearchSpace(grid: grid, samples: random, distributions: distributions)
    }

    /// `name=values`: the setting and its values.
    static func split(_ text: String, flag: String, separator: Character) throws -> (TunableSetting, [String]) {
        guard let equals = text.firstIndex(of: "=") else {
            throw ValidationError("\(flag) needs name=\(separator == "," ? "v1,v2,..." : "lo:hi") (got '\(text)')")
        }
        let setting = try TunableSetting.named(String(text[..<equals]).trimmingCharacters(in: .whitespaces))
        let values = text[text.index(after: equals)...].split(separator: separator, omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard !values.contains(where: \.isEmpty) else {
            throw ValidationError("\(flag) \(text): \(setting.name) has an empty value")
        }
        return (setting, values)
    }
}
