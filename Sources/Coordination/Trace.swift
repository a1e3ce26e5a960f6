import Communication
import Foundation
import Persistence

/// A timeline of a run in Chrome's trace-event format (JSON), which Perfetto
/// (ui.perfetto.dev) and chrome://tracing load: one process per rank, one thread
/// for compute and one for communication, a bar per forward pass, per layer's
/// backward, per bucket all-reduce and per optimizer step.
///
/// Events are kept in memory while training (appending is a lock and a few stores;
/// nothing is written during the run) and merged into one file by rank 0 at the end.
/// Times are microseconds since a barrier all ranks passed together, so on one
/// machine the ranks' tracks line up; across machines they line up to within the
/// clocks' offset.
public final class TraceRecorder: @unchecked Sendable {
    // @unchecked Sendable: `events` is guarded by `lock`; everything else is immutable.
    public enum Track: Int, Sendable {
        case compute = 0
        case communication = 1
    }

    private struct Event {
        let name: String
        let category: String
        let track: Track
        let start: Double
        let duration: Double
        let arguments: String?
    }

    private let lock = NSLock()
    private var events: [Event] = []
    private let origin: Double
    public let rank: Int

    /// Collective: every rank creates it at the same point (a barrier sets the origin).
    public init(world: any Communicator) {
        world.barrier()
        origin = MonotonicClock.seconds()
        rank = world.rank
        events.reserveCapacity(1 << 14)
    }

    /// Seconds on the trace clock.
    public func now() -> Double { MonotonicClock.seconds() }

    /// Records a span that started at `start` (from `now()`) and ends now.
    public func span(_ name: String, category: String, track: Track = .compute, since start: Double,
                     arguments: [String: String]? = nil) {
        let end = MonotonicClock.seconds()
        let encodedArguments = arguments.map { dictionary in
            "{" + dictionary.sorted { $0.key < $1.key }.map { "\(jsonQuoted($0.key)):\(jsonQuoted($0.value))" }
                .joined(separator: ",") + "}"
        }
        let event = Event(name: name, category: category, track: track, start: (start - origin) * 1e6,
                          duration: (end - start) * 1e6, arguments: encodedArguments)
        lock.lock()
        events.append(event)
        lock.unlock()
    }

    /// This rank's events as JSON objects, one per line.
    private func encoded() -> String {
        lock.lock(); defer { lock.unlock() }
        var lines: [String] = [
            #"{"ph":"M","name":"process_name","pid":\#(rank),"args":{"name":"rank \#(rank)"}}"#,
            #"{"ph":"M","name":"process_sort_index","pid":\#(rank),"args":{"sort_index":\#(rank)}}"#,
            #"{"ph":"M","name":"thread_name","pid":\#(rank),"tid":0,"args":{"name":"compute"}}"#,
            #"{"ph":"M","name":"thread_name","pid":\#(rank),"tid":1,"args":{"name":"communication"}}"#,
        ]
        lines.reserveCapacity(events.count + 4)
        for event in events {
            var line = #"{"ph":"X","name":\#(jsonQuoted(event.name)),"cat":"\#(event.category)","pid":\#(rank),"#
                + #""tid":\#(event.track.rawValue),"ts":\#(String(format: "%.3f", event.start)),"#
                + #""dur":\#(String(format: "%.3f", event.duration))"#
            if let arguments = event.arguments { line += #","args":\#(arguments)"# }
            lines.append(line + "}")
        }
        return lines.joined(separator: ",\n")
    }

    /// Collective: gathers every rank's events and rank 0 writes one file (atomically).
    public func write(to path: String, world: any Communicator) throws {
        let mine = Array(encoded().utf8)
        let all = world.allgatherBytes(mine)
        try world.together("writing the trace \(path)") {
            guard world.rank == 0 else { return }
            let body = all.map { String(decoding: $0, as: UTF8.self) }.filter { !$0.isEmpty }.joined(separator: ",\n")
            try AtomicFile.write("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n" + body + "\n]}\n", to: path)
        }
    }
}
