import ChorusMPI

/// A started non-blocking transfer.
public protocol Transfer: AnyObject {
    /// Blocks until the transfer has completed (its buffer may be reused).
    func wait()
}

/// What a collective algorithm needs from its group of ranks: who it is, how many
/// there are, non-blocking sends and receives, and a way to stop the whole job.
///
/// `Communicator` (real MPI ranks) and `InProcessGroup` (threads standing in for
/// ranks, for unit tests that count messages) both provide it, so every algorithm is
/// written once.
///
/// Buffers passed to `startSend` and `startReceive` must stay valid until the
/// transfer is waited for; the algorithms wait for everything they start before
/// returning, so callers' buffers are only borrowed for the call.
public protocol PointToPoint: AnyObject {
    var rank: Int { get }
    var size: Int { get }

    func startSend<T: MPIScalar>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int) -> Transfer
    func startReceive<T: MPIScalar>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int) -> Transfer

    /// Sends `sendBuffer` to `destination` while receiving `receiveBuffer` from
    /// `source`. Either buffer may be empty; both sides must agree on the lengths.
    func exchange<T: MPIScalar>(send sendBuffer: UnsafeBufferPointer<T>, to destination: Int,
                                receive receiveBuffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                tag: Int)

    /// Ends the whole job with `message`: for misuse that would otherwise hang or
    /// silently corrupt results (ranks disagreeing on a length).
    func abort(_ message: String) -> Never
}

extension PointToPoint {
    public func exchange<T: MPIScalar>(send sendBuffer: UnsafeBufferPointer<T>, to destination: Int,
                                       receive receiveBuffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                       tag: Int) {
        let receive = startReceive(into: receiveBuffer, from: source, tag: tag)
        let send = startSend(sendBuffer, to: destination, tag: tag)
        receive.wait()
        send.wait()
    }
}

extension Request: Transfer {
    public func wait() { wait(file: #fileID, line: #line) }
}

extension Communicator: PointToPoint {
    public func startSend<T: MPIScalar>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int) -> Transfer {
        unsafeIsend(buffer, to: destination, tag: tag)
    }

    public func startReceive<T: MPIScalar>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                           tag: Int) -> Transfer {
        unsafeIreceive(into: buffer, from: source, tag: tag)
    }

    public func exchange<T: MPIScalar>(send sendBuffer: UnsafeBufferPointer<T>, to destination: Int,
                                       receive receiveBuffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                       tag: Int) {
        sendReceive(sendBuffer, to: destination, into: receiveBuffer, from: source, tag: tag)
    }

    public func abort(_ message: String) -> Never { MPIRuntime.abort(message) }
}

/// Message tags reserved for Chorus's collectives, so their traffic never matches a
/// receive posted by other code on the same communicator.
enum CollectiveTag {
    static let lengthCheck = 0x7C00
    static let ring = 0x7C01
    static let recursiveDoubling = 0x7C03
    static let tree = 0x7C04
    static let scatterGather = 0x7C05
}

extension PointToPoint {
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
