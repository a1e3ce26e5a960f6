import Communication

/// Message tags reserved for Chorus's collectives, so their traffic never matches a
/// receive posted by other code on the same communicator.
enum CollectiveTag {
    static let lengthCheck = 0x7C00
    static let ring = 0x7C01
    static let recursiveDoubling = 0x7C03
    static let tree = 0x7C04
    static let scatterGather = 0x7C05
    static let chain = 0x7C06
}

extension Communicator {
    /// Checks that this rank and its ring neighbours pass the same element count,
    /// with one 8-byte exchange each way. Around a ring every rank is compared with
    /// both neighbours, so any disagreement is caught by at least two ranks, which end
    /// the job naming the ranks and counts instead of hanging or mixing data.
    func checkSameLengthAsNeighbours(_ count: Int, operation: String) {
        guard size > 1 else { return }
        let right = (rank + 1) % size, left = (rank - 1 + size) % size
        var mine = Int64(count)
        var fromLeft: Int64 = 0, fromRight: Int64 = 0
        withUnsafePointer(to: &mine) { m in
            let out = UnsafeBufferPointer(start: m, count: 1)
            withUnsafeMutablePointer(to: &fromLeft) { l in
                exchange(send: out, to: right, receive: UnsafeMutableBufferPointer(start: l, count: 1), from: left,
                         tag: CollectiveTag.lengthCheck)
            }
            if size > 2 {
                withUnsafeMutablePointer(to: &fromRight) { r in
                    exchange(send: out, to: left, receive: UnsafeMutableBufferPointer(start: r, count: 1), from: right,
                             tag: CollectiveTag.lengthCheck)
                }
            } else {
                fromRight = fromLeft
            }
        }
        if fromLeft != mine || fromRight != mine {
            let (other, theirs) = fromLeft != mine ? (left, fromLeft) : (right, fromRight)
            abort("\(operation): ranks disagree on the element count: rank \(rank) has \(count), rank \(other) has \(theirs); every rank must pass the same length")
        }
    }
}
