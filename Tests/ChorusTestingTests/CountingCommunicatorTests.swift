import ChorusTesting
import Communication
import XCTest

/// What `bytes_sent_per_step` rests on: every byte a rank sends, through the groups
/// made from it too, and nothing it only receives.
final class CountingCommunicatorTests: XCTestCase {
    func testCountsSendsAndExchangesThroughDerivedGroupsButNotReceives() {
        let counts = InProcessGroup(size: 2).run { member -> Int in
            let counting = CountingCommunicator(member)
            let peer = 1 - member.rank
            let outgoing = [Float](repeating: 1, count: 10 + member.rank)  // rank 0 sends 40 bytes, rank 1 44
            var incoming = [Float](repeating: 0, count: 10 + peer)
            outgoing.withUnsafeBufferPointer { send in
                incoming.withUnsafeMutableBufferPointer { receive in
                    let r = counting.startReceive(into: receive, from: peer, tag: 1)
                    counting.startSend(send, to: peer, tag: 1).wait()
                    r.wait()
                }
            }
            let duplicate = counting.duplicate()
            var mine: [Int32] = [7, 7, 7]
            var theirs: [Int32] = [0, 0, 0]
            mine.withUnsafeBufferPointer { send in
                theirs.withUnsafeMutableBufferPointer { receive in
                    duplicate.exchange(send: send, to: peer, receive: receive, from: peer, tag: 2)
                }
            }
            duplicate.release()
            mine.removeAll()
            return counting.counter.bytes
        }
        XCTAssertEqual(counts, [40 + 12, 44 + 12])
    }
}
