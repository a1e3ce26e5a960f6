import Foundation

/// A flat JSON object of numbers and strings, written once at the end of a run.
public struct Metrics {
    public private(set) var fields: [String: Any] = [:]

    public init() {}

    /// JSON has no NaN or infinity: such a number (the loss of a diverged run) is
    /// written as null.
    public subscript(key: String) -> Any? {
        get { fields[key] }
        set { fields[key] = (newValue as? Double).map { $0.isFinite ? $0 as Any : NSNull() } ?? newValue }
    }

    public func json() throws -> String {
        let data = try JSONSerialization.data(withJSONObject: fields, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    public func write(to path: String) throws {
        try AtomicFile.write(json(), to: path)
    }
}
