import Communication
import NeuralNet

/// What one rank's checkpoints hold and where they go.
public struct CheckpointScope {
    /// This rank's checkpoint directory (a pipeline stage has its own).
    public let directory: String
    /// Whether this rank writes them (one rank per directory).
    public let writes: Bool
    public let parameters: FlatParameters
    /// The tensors this rank's checkpoints hold.
    public let slots: [ParameterSlot]
    public let optimizer: Optimizer
    /// What a resuming run must match (model, ranks, global batch, ...).
    public let layout: [String: String]
    /// Who resumed, for the log ("every stage"), or nil.
    public let subject: String?
    /// Other state later steps depend on (a communication hook's residuals), which may
    /// differ per rank: read on every rank of `stateGroup` at every save, gathered to
    /// its rank 0 (the writer), handed back to the same rank on resume.
    public let saveState: () -> [String: [Float]]
    public let restoreState: ([String: [Float]]) throws -> Void
    /// The ranks whose state this directory's checkpoints hold, the writer first
    /// (nil: every rank of the loop, rank 0 writing). A pipeline stage's directory
    /// holds its own replicas' state only.
    public let stateGroup: (any Communicator)?

    public init(directory: String, writes: Bool, parameters: FlatParameters, slots: [ParameterSlot], optimizer: Optimizer,
                layout: [String: String], subject: String? = nil,
                saveState: @escaping () -> [String: [Float]] = { [:] },
                restoreState: @escaping ([String: [Float]]) throws -> Void = { _ in },
                stateGroup: (any Communicator)? = nil) {
        self.directory = directory
        self.writes = writes
        self.parameters = parameters
        self.slots = slots
        self.optimizer = optimizer
        self.layout = layout
        self.subject = subject
        self.saveState = saveState
        self.restoreState = restoreState
        self.stateGroup = stateGroup
    }
}

extension CheckpointScope {
    /// The scope with `layout` added to what a resuming run must match.
    func adding(layout extra: [String: String]) -> CheckpointScope {
        CheckpointScope(directory: directory, writes: writes, parameters: parameters, slots: slots, optimizer: optimizer,
                        layout: layout.merging(extra) { own, _ in own }, subject: subject, saveState: saveState,
                        restoreState: restoreState, stateGroup: stateGroup)
    }
}
