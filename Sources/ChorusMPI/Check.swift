import CMPI
import Communication

#if canImport(Glibc)
import Glibc
#endif

/// The one place every MPI return code is checked (llm.c's `mpiCheck`).
///
/// MPI_COMM_WORLD is switched to `MPI_ERRORS_RETURN` at start-up, so a failing call
/// returns here instead of aborting inside the library with no context. A failure is
/// not recoverable in a collective job (the peers are already waiting on us), so the
/// report names the rank, the call and the Swift source location of the Chorus code
/// that made it, then the whole job is ended with `MPI_Abort`: every rank exits
/// non-zero, none hangs.
@inline(__always)
func check(_ code: Int32, _ call: StaticString, at location: SourceLocation) {
    if code != MPI_SUCCESS {
        failMPI(code, call, at: location)
    }
}

@inline(__always)
func check(_ code: Int32, _ call: StaticString, file: StaticString = #fileID, line: UInt = #line) {
    if code != MPI_SUCCESS {
        failMPI(code, call, at: SourceLocation(file: file, line: line))
    }
}

@inline(never)
func failMPI(_ code: Int32, _ call: StaticString, at location: SourceLocation) -> Never {
    var length: Int32 = 0
    var text = [CChar](repeating: 0, count: Int(chorus_max_error_string()) + 1)
    MPI_Error_string(code, &text, &length)
    let message = String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    MPIRuntime.abort("\(call) failed at \(location): \(message) (error code \(code))", code: code)
}
