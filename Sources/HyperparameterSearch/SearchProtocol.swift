import Communication
import Foundation

/// The messages between the search's coordinator (a thread on world rank 0) and the
/// groups, on a duplicate of the world communicator so they never match a trial's.
///
///     group leader                          coordinator (rank 0, own thread)
///     ── request {group, report of the  ──►  records the report, writes the results
///         work just done, or none}           file, asks the scheduler
///     ◄── assignment {train trial t     ───  at once, or when a later report frees
///         through rung k | finish}           work (ASHA's wait)
///     ── assignment to every member of the group; all run it, the leader reports
///
/// Every wait here polls and sleeps: a group waiting for a promotion, or ranks
/// waiting for a refit on another group, leave the cores to the ranks training
/// (an MPI receive would spin on them). The latency this adds, a millisecond per
/// message, is nothing against a trial.
enum SearchTag {
    static let request = 0x5400
    static let assignment = 0x5401
    static let release = 0x5402
}

/// What a group leader tells the coordinator.
struct WorkRequest: Codable, Equatable, Sendable {
    let group: Int
    /// The work the group has just finished, or nil on its first request.
    let report: WorkReport?
}

/// The outcome of one rung of one trial.
struct WorkReport: Codable, Equatable, Sendable {
    let trial: Int
    let rung: Int
    /// One score per fold; nil when the trial failed.
    let foldScores: [Double]?
    let message: String
    let seconds: Double
    /// Training samples processed, over all folds (the compute spent).
    let samples: Int
}

/// What a group runs next.
enum Assignment: Codable, Equatable, Sendable {
    case train(TrialWork)
    case finish
}

struct TrialWork: Codable, Equatable, Sendable {
    let trial: Trial
    let rung: Int
    /// Epochs trained when the rung ends (nil: the trial's own count).
    let epochs: Int?
    /// Epochs the previous rung ended at (0 for the first): the checkpoint to continue from.
    let previousEpochs: Int
}

extension Communicator {
    func sendMessage<Message: Encodable>(_ message: Message, to destination: Int, tag: Int) {
        let bytes = [UInt8](try! SearchCoding.encoder().encode(message))
        bytes.withUnsafeBufferPointer { startSend($0, to: destination, tag: tag).wait() }
    }

    /// Waits for a message without spinning: polls, sleeping a millisecond between polls.
    func receiveMessage<Message: Decodable>(_ type: Message.Type, from source: Int = Wildcard.anySource, tag: Int)
        -> (message: Message, source: Int) {
        let status = waitWithoutSpinning(from: source, tag: tag)
        return (decode(type, status), status.source)
    }

    func waitWithoutSpinning(from source: Int, tag: Int) -> MessageStatus {
        while true {
            if let status = poll(from: source, tag: tag) { return status }
            usleep(1000)
        }
    }

    private func decode<Message: Decodable>(_ type: Message.Type, _ status: MessageStatus) -> Message {
        var bytes = [UInt8](repeating: 0, count: status.byteCount)
        bytes.withUnsafeMutableBufferPointer { startReceive(into: $0, from: status.source, tag: status.tag).wait() }
        // Both ends are this program: a message that does not decode is a bug, not input.
        guard let message = try? SearchCoding.decoder().decode(type, from: Data(bytes)) else {
            abort("the search's message from rank \(status.source) (tag \(status.tag), \(bytes.count) bytes) does not decode")
        }
        return message
    }
}

extension Communicator {
    /// `message` from `root` on every rank of the group (length first, then the bytes).
    func broadcastMessage<Message: Codable>(_ message: Message?, root: Int = 0) -> Message {
        var bytes = rank == root ? [UInt8](try! SearchCoding.encoder().encode(message!)) : []
        var length = [Int64(bytes.count)]
        length.withUnsafeMutableBufferPointer { broadcast($0, root: root) }
        if rank != root { bytes = [UInt8](repeating: 0, count: Int(length[0])) }
        bytes.withUnsafeMutableBufferPointer { broadcast($0, root: root) }
        guard let decoded = try? SearchCoding.decoder().decode(Message.self, from: Data(bytes)) else {
            abort("the search's broadcast from rank \(root) (\(bytes.count) bytes) does not decode")
        }
        return decoded
    }
}

/// JSON that carries a non-finite score (a fold that scored nan) instead of failing on it.
enum SearchCoding {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}
