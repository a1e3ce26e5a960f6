/// Names of the configuration fields the ranks agree on, in the library's terms.
/// The command line maps them to its flags when it reports a mismatch.
public enum TrainingField {
    public static let model = "the model"
    public static let dataset = "the dataset"
    public static let optimizer = "the optimizer"
    public static let seed = "the seed"
    public static let runLength = "the length of the run (epochs/steps)"
    public static let checkpoints = "checkpointing"
    public static let outputs = "the output files"
    public static let logging = "the steps between progress lines"
    public static let evaluation = "the steps between evaluations"
    public static let nonFiniteGradients = "what to do with non-finite gradients"
}
