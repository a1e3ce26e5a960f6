import Communication
import Coordination
import NeuralNet

/// A worker's side of the push-pull: the gradient's ranges to their servers, the
/// fresh parameters back, all servers at once.
final class WorkerChannel {
    private let channel: any Communicator
    private let ranges: [Range<Int>]
    private let pushes: [MessageBuffer<Float>]
    private let replies: [MessageBuffer<Float>]
    private(set) var blockedSeconds = 0.0
    private(set) var bytesPushed = 0
    private(set) var bytesPulled = 0
    /// Reads answered, by the staleness they saw (the most any server reported).
    private(set) var staleness = StalenessHistogram()
    private let notice = MessageBuffer<Float>(count: 1, repeating: 0)

    /// Server k is rank k of `channel`.
    init(channel: any Communicator, partition: ServerPartition) {
        self.channel = channel
        ranges = partition.ranges
        pushes = ranges.map { MessageBuffer(count: $0.count + PushPull.Push.trailer, repeating: 0) }
        replies = ranges.map { MessageBuffer(count: $0.count + PushPull.Reply.trailer, repeating: 0) }
    }

    struct Answer {
        let verdict: Verdict
        /// Server 0's count of applied pushes, in optimizer steps' worth.
        let globalStep: Int
    }

    /// Pushes `gradients` (the whole model's) as the update of `clock`, and waits for
    /// every server's parameters, which it writes into `values`.
    func pushPull(gradients: UnsafeMutableBufferPointer<Float>, loss: Double, skipped: Bool, clock: Int,
                  into values: UnsafeMutableBufferPointer<Float>, watchdog: Watchdog?) -> Answer {
        var transfers: [any Transfer] = []
        for (k, range) in ranges.enumerated() {
            let message = pushes[k].pointer
            _ = UnsafeMutableBufferPointer(rebasing: message[0..<range.count])
                .update(fromContentsOf: UnsafeBufferPointer(rebasing: gradients[range]))
            message[range.count + PushPull.Push.loss] = Float(loss)
            message[range.count + PushPull.Push.skipped] = skipped ? 1 : 0
            transfers.append(channel.startReceive(into: replies[k], from: k, tag: PushPull.tag(clock: clock + 1)))
            transfers.append(channel.startSend(pushes[k], to: k, tag: PushPull.tag(clock: clock)))
            bytesPushed += pushes[k].count * MemoryLayout<Float>.stride
            bytesPulled += replies[k].count * MemoryLayout<Float>.stride
        }
        let waited = MonotonicClock.seconds()
        watchdog.waiting(for: "the servers' parameters for clock \(clock + 1)") { transfers.waitAll() }
        blockedSeconds += MonotonicClock.seconds() - waited
        var seen = 0
        for (k, range) in ranges.enumerated() {
            let message = replies[k].pointer
            _ = UnsafeMutableBufferPointer(rebasing: values[range])
                .update(fromContentsOf: UnsafeBufferPointer(rebasing: message[0..<range.count]))
            seen = max(seen, Int(message[range.count + PushPull.Reply.staleness]))
        }
        staleness.record(seen)
        let first = replies[0].pointer, n = ranges[0].count
        return Answer(verdict: Verdict(rawValue: first[n + PushPull.Reply.verdict]) ?? .proceed,
                      globalStep: Int(first[n + PushPull.Reply.globalStep]))
    }

    /// Tells servers 1..<K this worker has paused (server 0 told it to).
    func announcePause() {
        (1..<ranges.count).map { channel.startSend(notice, range: 0..<0, to: $0, tag: PushPull.pauseNoticeTag) }.waitAll()
    }
}
