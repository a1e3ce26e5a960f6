import Communication
import Foundation

/// The thread on world rank 0 that answers the group leaders: it receives a request,
/// lets the board decide, and sends the assignments. Groups ask when they are free,
/// so trials of different lengths keep every group busy (a static split would leave
/// the groups that drew short trials idle).
///
/// If the board fails (the results file cannot be written), every group is told to
/// finish at its next request and the error is kept for the search to report: the
/// ranks stop together instead of training on into a search that cannot be saved.
final class SearchCoordinator: @unchecked Sendable {
    let board: SearchBoard
    private let control: any Communicator
    private let ranksPerTrial: Int
    private let done = DispatchSemaphore(value: 0)
    // Written by the coordinator thread, read after `join`.
    private(set) var error: (any Error)?

    init(board: SearchBoard, control: any Communicator, ranksPerTrial: Int) {
        self.board = board
        self.control = control
        self.ranksPerTrial = ranksPerTrial
    }

    func start() {
        let thread = Thread { [self] in
            serve()
            done.signal()
        }
        thread.name = "search coordinator"
        thread.start()
    }

    /// Waits until every group has been told to finish.
    func join() { done.wait() }

    private func serve() {
        while !board.isFinished {
            let (request, _) = control.receiveMessage(WorkRequest.self, tag: SearchTag.request)
            var replies: [(group: Int, assignment: Assignment)]
            if error == nil {
                do {
                    replies = try board.handle(request)
                } catch {
                    self.error = error
                    replies = board.abandon(request)
                }
            } else {
                replies = board.abandon(request)
            }
            for (group, assignment) in replies {
                control.sendMessage(assignment, to: group * ranksPerTrial, tag: SearchTag.assignment)
            }
        }
    }
}
