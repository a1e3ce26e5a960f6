import Foundation

/// A flat JSON object of numbers and strings, written once at the end of a run.
public struct Metrics {
    public private(set) var fields: [String: Any] = [:]

    public init() {}

    public subscript(key: String) -> Any? {
        get { fields[key] }
        set { fields[key] = newValue }
    }

    public func json() throws -> String {
        let data = try JSONSerialization.data(withJSONObject: fields, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    public func write(to path: String) throws {
        try AtomicFile.write(json(), to: path)
    }
}
