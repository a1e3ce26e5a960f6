/// One configuration to train and score: the base configuration with some settings
/// replaced.
public struct Trial: Sendable, Equatable, Codable {
    /// Its number in the search: its row in the results, stable across resumes and
    /// group counts (the default configuration, when it is not a point of the space,
    /// is trial 0 and the space's points follow).
    public let id: Int
    /// The settings this trial replaces, in the space's order of names.
    public let parameters: [Setting]
    /// Whether these are the base configuration's own values (the score every search
    /// report compares the best against).
    public let isDefault: Bool

    public init(id: Int, parameters: [Setting], isDefault: Bool = false) {
        self.id = id
        self.parameters = parameters
        self.isDefault = isDefault
    }

    /// `lr=0.1 momentum=0.9`, for logs.
    public var label: String {
        parameters.isEmpty ? "(base configuration)" : parameters.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
    }

    public func value(of name: String) -> String? { parameters.first { $0.name == name }?.value }
}

/// One setting's name and its value as text (what the trainer parses).
public struct Setting: Sendable, Equatable, Hashable, Codable {
    public let name: String
    public let value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}
