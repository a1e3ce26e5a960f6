/// This build of Chorus, as recorded in the files it writes.
public enum Chorus {
    public static let version = "0.16.0"
}
