/// `precondition` whose message survives a release build (there the standard one
/// stops with "precondition failure" only): for the checks that report misuse of
/// the public API, such as a tensor of the wrong shape handed to a layer. Each runs
/// once per call, not per element.
@inline(__always)
func require(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition { fatalError(message(), file: file, line: line) }
}
