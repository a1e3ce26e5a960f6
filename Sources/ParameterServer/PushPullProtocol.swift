/// The messages between workers and servers, on the parameter server's own
/// communicator (a duplicate of the job's, so nothing else can match them).
///
/// One worker iteration at clock c, for each server k at once:
///
///     worker ──push(c)──► server k    tag c mod 2^14: the gradient of k's range,
///                                     then [loss, skipped]
///     worker ◄─reply(c+1)─ server k   tag (c+1) mod 2^14: k's parameters once the
///                                     read at clock c+1 is admitted, then
///                                     [verdict, global step, staleness]
///
/// A push is also the next read (ps-lite's push-pull): a worker has at most one
/// message in flight to each server, so a server keeps one receive buffer per worker
/// and the tag, checked against the clock the server expects, catches a protocol
/// slip at once. Server 0's verdict says whether the worker goes on or pauses at the
/// loop's synchronisation point; a paused worker tells the other servers so with an
/// empty `pauseNotice`, after their replies (so they have seen all its pushes).
enum PushPull {
    // MPI guarantees tags up to 32767 only; clocks take the lower half, and the pause
    // notice the tag just above them.
    static let clockTags = 1 << 14
    static let pauseNoticeTag = clockTags

    static func tag(clock: Int) -> Int { clock % clockTags }

    /// Values after the gradient in a push.
    enum Push {
        static let trailer = 2
        static let loss = 0
        /// 1: the worker's gradient was not finite and the run skips such updates.
        static let skipped = 1
    }

    /// Values after the parameters in a reply.
    enum Reply {
        static let trailer = 3
        static let verdict = 0
        /// Optimizer steps' worth of pushes server 0 has applied (pushes / workers).
        static let globalStep = 1
        /// The reader's clock minus the slowest worker's when the read was answered.
        static let staleness = 2
    }
}

/// Server 0's answer to a read.
enum Verdict: Float {
    case proceed = 0
    /// The loop synchronises after this step: stop iterating until it has.
    case pause = 1
}
