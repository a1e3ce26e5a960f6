#if canImport(Glibc)
import Glibc
#endif

/// Writes `text` to standard error at once (the descriptor, unbuffered, so a line
/// is out before a job-ending abort). C's `stderr` is a global variable that Swift 6
/// cannot prove safe to share between threads; the descriptor needs no such proof.
public func writeToStandardError(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        if written < 0 { if errno == EINTR { continue }; return }
        bytes = bytes.dropFirst(written)
    }
}

/// Pushes out everything buffered for standard output (and every other C stream).
public func flushStandardOutput() {
    fflush(nil)
}
