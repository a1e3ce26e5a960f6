import Foundation
import Persistence

/// The search's results as CSV, one row per trial that has ended a rung, in the
/// layout of scikit-learn's `cv_results_`: `param_<name>` columns, `split<k>_score`,
/// `mean_score`, `std_score`, `rank`, then what a search over MPI adds (the rung
/// reached, its epochs, seconds, status, the group, the failure message, and the
/// score at every rung, which a resumed early-stopping search needs).
///
/// The file is rewritten whole and atomically each time a trial ends (rows in trial
/// order), so a crash leaves the previous complete file, never a torn row; on resume
/// its rows are read back and only the missing trials run.
public struct ResultsFile {
    public let path: String
    public let names: [String]
    public let folds: Int

    public init(path: String, names: [String], folds: Int) {
        self.path = path
        self.names = names
        self.folds = folds
    }

    var header: [String] {
        ["trial"] + names.map { "param_\($0)" } + (0..<folds).map { "split\($0)_score" }
            + ["mean_score", "std_score", "rank", "rung", "epochs", "train_seconds", "status", "group", "default", "message",
               "rung_scores"]
    }

    public func write(_ records: [TrialRecord]) throws {
        try AtomicFile.write(render(records), to: path)
    }

    public func render(_ records: [TrialRecord]) -> String {
        let ranks = records.ranks()
        let rows = records.sorted { $0.trial.id < $1.trial.id }.map { record -> [String] in
            let scores = (0..<folds).map { record.foldScores.indices.contains($0) ? Self.number(record.foldScores[$0]) : "" }
            return ["\(record.trial.id)"] + names.map { record.trial.value(of: $0) ?? "" } + scores + [
                Self.number(record.meanScore), Self.number(record.standardDeviation), "\(ranks[record.trial.id]!)",
                "\(record.rung)", record.epochs.map(String.init) ?? "", String(format: "%.3f", record.trainSeconds),
                record.status.rawValue, "\(record.group)", record.trial.isDefault ? "1" : "0", record.message,
                record.rungScores.map { $0.map(Self.number).joined(separator: " ") }.joined(separator: ";"),
            ]
        }
        return ([header] + rows).map { $0.map(CSV.field).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    /// Scores round-trip exactly: the shortest text that reads back as the same Double.
    static func number(_ value: Double) -> String { value.isFinite ? "\(value)" : "" }

    /// The records of an earlier run of the same search, checked against `trials`:
    /// a file written for another space (other names, other values at an id) is an
    /// error, not silently mixed in.
    public func read(matching trials: [Trial]) throws -> [TrialRecord] {
        let text = try String(decoding: AtomicFile.read(path), as: UTF8.self)
        let table = try CSV.parse(text, file: path)
        guard let head = table.first else { return [] }
        guard head == header else {
            throw ResultsFileError.otherSearch(path, "its columns are \(head.joined(separator: ",")), this search writes "
                                               + header.joined(separator: ","))
        }
        let column = Dictionary(uniqueKeysWithValues: head.enumerated().map { ($1, $0) })
        return try table.dropFirst().enumerated().map { line, row in
            func field(_ name: String) -> String { row[column[name]!] }
            guard row.count == head.count else { throw ResultsFileError.malformed(path, line: line + 2, "\(row.count) fields of \(head.count)") }
            guard let id = Int(field("trial")), let trial = trials.first(where: { $0.id == id }) else {
                throw ResultsFileError.otherSearch(path, "it has trial \(field("trial")), which this search does not")
            }
            let values = names.map { field("param_\($0)") }
            guard values == names.map({ trial.value(of: $0) ?? "" }) else {
                throw ResultsFileError.otherSearch(path, "its trial \(id) is \(values.joined(separator: " ")), here it is \(trial.label)")
            }
            guard let status = TrialRecord.Status(rawValue: field("status")) else {
                throw ResultsFileError.malformed(path, line: line + 2, "status '\(field("status"))'")
            }
            var record = TrialRecord(trial: trial, status: status)
            record.rungScores = try field("rung_scores").split(separator: ";", omittingEmptySubsequences: false)
                .filter { !$0.isEmpty }.map { rung in
                    try rung.split(separator: " ").map {
                        guard let score = Double($0) else { throw ResultsFileError.malformed(path, line: line + 2, "score '\($0)'") }
                        return score
                    }
                }
            record.epochs = Int(field("epochs"))
            record.trainSeconds = Double(field("train_seconds")) ?? 0
            record.group = Int(field("group")) ?? 0
            record.message = field("message")
            return record
        }
    }
}

public enum ResultsFileError: Error, CustomStringConvertible {
    case otherSearch(String, String)
    case malformed(String, line: Int, String)

    public var description: String {
        switch self {
        case .otherSearch(let path, let why): "\(path) holds the results of another search (\(why)); resume needs the same search"
        case .malformed(let path, let line, let what): "\(path) line \(line) is not a results row: \(what)"
        }
    }
}

/// RFC 4180 fields: quoted when they hold a comma, a quote or a line break.
enum CSV {
    static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func parse(_ text: String, file: String) throws -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = ""
        var quoted = false, index = text.startIndex
        while index < text.endIndex {
            let c = text[index]
            index = text.index(after: index)
            if quoted {
                if c == "\"" {
                    if index < text.endIndex, text[index] == "\"" {
                        field.append("\"")
                        index = text.index(after: index)
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                row.append(field)
                field = ""
            } else if c == "\n" || c == "\r\n" {  // "\r\n" is one Character in Swift
                row.append(field)
                rows.append(row)
                row = []
                field = ""
            } else if c != "\r" {
                field.append(c)
            }
        }
        if quoted { throw ResultsFileError.malformed(file, line: rows.count + 1, "an unterminated quote") }
        if !field.isEmpty || !row.isEmpty { rows.append(row + [field]) }
        return rows
    }
}
