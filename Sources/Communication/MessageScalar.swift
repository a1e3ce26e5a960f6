/// The element kinds Chorus moves between ranks.
public enum ScalarKind: Sendable {
    case float32, float64, int32, int64, uint8, uint16
    /// IEEE half precision and bfloat16: moved as 16-bit words; the transport cannot
    /// reduce them (MPI has no half-precision sum), Chorus's own collectives can.
    case float16, bfloat16

    /// Whether the transport's own collectives (`Communicator.allreduce`) can reduce it.
    public var transportReduces: Bool { self != .float16 && self != .bfloat16 }
}

/// A Swift type a transport can move and reduce element-wise.
public protocol MessageScalar: Sendable {
    static var scalarKind: ScalarKind { get }
}

extension Float: MessageScalar { public static var scalarKind: ScalarKind { .float32 } }
extension Double: MessageScalar { public static var scalarKind: ScalarKind { .float64 } }
extension Int32: MessageScalar { public static var scalarKind: ScalarKind { .int32 } }
extension Int64: MessageScalar { public static var scalarKind: ScalarKind { .int64 } }
extension UInt8: MessageScalar { public static var scalarKind: ScalarKind { .uint8 } }
extension UInt16: MessageScalar { public static var scalarKind: ScalarKind { .uint16 } }
extension Float16: MessageScalar { public static var scalarKind: ScalarKind { .float16 } }
extension BFloat16: MessageScalar { public static var scalarKind: ScalarKind { .bfloat16 } }

/// Element-wise reduction operators of the transport's own collectives.
public enum ReduceOp: Sendable, CaseIterable {
    case sum, max, min
}
