import Communication
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Test-only faults, so tests can show that a failing rank ends the job promptly and
/// that the run resumes from its checkpoint:
///
///     CHORUS_FAULT="rank=2,step=5,action=exit"    rank 2 dies as step 5 begins
///     CHORUS_FAULT="rank=1,step=3,action=stall"   rank 1 stops responding at step 3
///
/// `exit` ends the process at once, without MPI_Finalize, like a crash.
public enum FaultInjection {
    public static let variable = "CHORUS_FAULT"

    struct Fault {
        let rank: Int
        let step: Int
        let stall: Bool
    }

    static let planned: Fault? = {
        guard let text = ProcessInfo.processInfo.environment[variable] else { return nil }
        var fields: [String: String] = [:]
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        guard let rank = fields["rank"].flatMap(Int.init), let step = fields["step"].flatMap(Int.init),
              let action = fields["action"], action == "exit" || action == "stall" else {
            writeToStandardError("chorus: ignoring malformed \(variable)='\(text)' (expected rank=R,step=S,action=exit|stall)\n")
            return nil
        }
        return Fault(rank: rank, step: step, stall: action == "stall")
    }()

    /// Call as each optimizer step begins.
    public static func check(rank: Int, step: Int) {
        guard let fault = planned, fault.rank == rank, fault.step == step else { return }
        writeToStandardError("chorus [rank \(rank)]: injected fault at step \(step): \(fault.stall ? "stalling" : "exiting")\n")
        if fault.stall {
            while true { sleep(3600) }
        }
        _exit(17)
    }
}
