import Foundation
import Persistence

/// `--rounds-csv`: one row per round, rewritten atomically by rank 0 after every
/// round, so a crash leaves the rows of the rounds done. A run that starts at round r
/// (resumed from a checkpoint) keeps the file's rows before r and drops the rest: the
/// resumed file is the uninterrupted run's, apart from the seconds.
struct RoundsFile {
    static let header = "round,asked,reported,dropped,mean_loss,test_accuracy,client_samples,bytes_down,bytes_up,seconds,late,round_time"

    struct Row {
        var round: Int
        var asked: Int
        var reported: Int
        var meanLoss: Double
        var testAccuracy: Double?
        var clientSamples: Int
        var bytesDown: Int
        var bytesUp: Int
        var seconds: Double
        /// Asked clients past the deadline, and the round's simulated time (`ClientTiming`).
        var late: Int
        var roundTime: Double

        var line: String {
            [String(round), String(asked), String(reported), String(asked - reported),
             meanLoss.isFinite ? String(format: "%.6f", meanLoss) : "",
             testAccuracy.map { String(format: "%.4f", $0) } ?? "", String(clientSamples), String(bytesDown), String(bytesUp),
             String(format: "%.3f", seconds), String(late), String(format: "%.4f", roundTime)].joined(separator: ",")
        }
    }

    let path: String
    private(set) var lines: [String] = []
    private var rows: [Row] = []
    private var started = false

    init(path: String) {
        self.path = path
    }

    /// The round about to run is `round`: on the first call, the rows to keep.
    mutating func begin(round: Int) {
        guard !started else { return }
        started = true
        guard round > 0, let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        let found = text.split(separator: "\n").map(String.init)
        // Rows under another header (an older layout) are not this run's to keep.
        guard found.first == Self.header else { return }
        let kept = found.dropFirst().filter { line in
            Int(line.prefix { $0 != "," }).map { $0 <= round } ?? false
        }
        // Only a whole prefix 1...round is this run's; anything else is another run's.
        if kept.count == round { lines = Array(kept) }
    }

    mutating func append(_ row: Row) {
        rows.append(row)
        lines.append(row.line)
    }

    mutating func setAccuracy(_ accuracy: Double, round: Int) {
        guard let last = rows.indices.last, rows[last].round == round else { return }
        rows[last].testAccuracy = accuracy
        lines[lines.count - 1] = rows[last].line
    }

    func write() throws {
        try AtomicFile.write(([Self.header] + lines).joined(separator: "\n") + "\n", to: path)
    }
}
