#if canImport(Glibc)
import Glibc
#endif

/// Seconds on CLOCK_MONOTONIC: immune to wall-clock adjustments, and one clock for
/// every process of a machine, so timelines of ranks on one node line up.
public enum MonotonicClock {
    @inline(__always)
    public static func seconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
    }

    /// Nanoseconds on the same clock (a vDSO call, no system call).
    @inline(__always)
    public static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
