import CMPI

/// The element kinds Chorus moves over MPI.
public enum ScalarKind: Sendable {
    case float32, float64, int32, int64, uint8

    var datatype: MPI_Datatype {
        switch self {
        case .float32: chorus_float()
        case .float64: chorus_double()
        case .int32: chorus_int32()
        case .int64: chorus_int64()
        case .uint8: chorus_uint8()
        }
    }
}

/// A Swift type with a matching MPI datatype.
public protocol MPIScalar: Sendable {
    static var scalarKind: ScalarKind { get }
}

extension Float: MPIScalar { public static var scalarKind: ScalarKind { .float32 } }
extension Double: MPIScalar { public static var scalarKind: ScalarKind { .float64 } }
extension Int32: MPIScalar { public static var scalarKind: ScalarKind { .int32 } }
extension Int64: MPIScalar { public static var scalarKind: ScalarKind { .int64 } }
extension UInt8: MPIScalar { public static var scalarKind: ScalarKind { .uint8 } }

/// Reduction operators.
public enum ReduceOp: Sendable {
    case sum, max, min

    var op: MPI_Op {
        switch self {
        case .sum: chorus_op_sum()
        case .max: chorus_op_max()
        case .min: chorus_op_min()
        }
    }
}
