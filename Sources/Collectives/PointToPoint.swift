import ChorusMPI

/// What a collective algorithm needs from its group of ranks: who it is, how many
/// there are, and a deadlock-free paired send and receive.
///
/// `Communicator` (real MPI ranks) and `InProcessGroup` (threads standing in for
/// ranks, for unit tests that count messages) both provide it, so every algorithm
/// is written once.
public protocol PointToPoint: AnyObject {
    var rank: Int { get }
    var size: Int { get }

    /// Sends `sendBuffer` to `destination` while receiving `receiveBuffer` from
    /// `source`. Either buffer may be empty; both sides must agree on the lengths.
    func exchange<T: MPIScalar>(send sendBuffer: UnsafeBufferPointer<T>, to destination: Int,
                                receive receiveBuffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                tag: Int)
}

extension Communicator: PointToPoint {
    public func exchange<T: MPIScalar>(send sendBuffer: UnsafeBufferPointer<T>, to destination: Int,
                                       receive receiveBuffer: UnsafeMutableBufferPointer<T>, from source: Int,
                                       tag: Int) {
        sendReceive(sendBuffer, to: destination, into: receiveBuffer, from: source, tag: tag)
    }
}

/// Message tags reserved for Chorus's collectives, so their traffic never matches a
/// receive posted by other code on the same communicator.
enum CollectiveTag {
    static let ringReduceScatter = 0x7C01
    static let ringAllgather = 0x7C02
}
