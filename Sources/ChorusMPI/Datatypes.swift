import CMPI
import Communication

extension ScalarKind {
    /// The MPI datatype of elements of this kind.
    var datatype: MPI_Datatype {
        switch self {
        case .float32: chorus_float()
        case .float64: chorus_double()
        case .int32: chorus_int32()
        case .int64: chorus_int64()
        case .uint8: chorus_uint8()
        case .uint16, .float16, .bfloat16: chorus_uint16()
        }
    }
}

extension ReduceOp {
    var mpiOp: MPI_Op {
        switch self {
        case .sum: chorus_op_sum()
        case .max: chorus_op_max()
        case .min: chorus_op_min()
        }
    }
}

extension MessageStatus {
    init(_ status: MPI_Status) {
        var status = status
        var bytes: Int32 = 0
        check(MPI_Get_count(&status, chorus_byte(), &bytes), "MPI_Get_count")
        self.init(source: Int(chorus_status_source(&status)), tag: Int(chorus_status_tag(&status)), byteCount: Int(bytes))
    }
}

/// MPI's spelling of the wildcards.
func mpiSource(_ source: Int) -> Int32 { source == Wildcard.anySource ? chorus_any_source() : Int32(source) }
func mpiTag(_ tag: Int) -> Int32 { tag == Wildcard.anyTag ? chorus_any_tag() : Int32(tag) }
