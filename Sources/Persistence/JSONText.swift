/// `text` as a JSON string literal: quoted, with quotes, backslashes and control
/// characters escaped. For the JSON Chorus writes by hand (safetensors headers, traces),
/// where field order and layout are fixed by the format.
public func jsonQuoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
