/// bfloat16: the upper half of an IEEE float32 (8 exponent bits, 7 fraction bits).
///
/// It keeps float32's range, so gradients neither overflow nor flush to zero where
/// float32 would not, at the price of about 3 significant decimal digits. Swift has
/// no such type; this one only converts and compares, and arithmetic on it goes
/// through `Float` (one rounding per operation, like hardware that widens).
public struct BFloat16: Sendable, Hashable, CustomStringConvertible {
    public var bitPattern: UInt16

    public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    /// `value` rounded to the nearest bfloat16, ties to even; NaN stays NaN (quiet),
    /// infinities stay infinite, and values beyond the largest finite bfloat16 round
    /// to infinity as float32 → float16 conversion does.
    @inline(__always)
    public init(_ value: Float) {
        let bits = value.bitPattern
        if value.isNaN {
            bitPattern = UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
        } else {
            // Adding 0x7FFF plus the lowest kept bit rounds to nearest, ties to even;
            // a carry out of the fraction correctly bumps the exponent.
            let rounding = 0x7FFF &+ ((bits >> 16) & 1)
            bitPattern = UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
        }
    }

    /// The exact float32 value.
    @inline(__always)
    public var float: Float { Float(bitPattern: UInt32(bitPattern) << 16) }

    public var description: String { "\(float)" }
}
