import Communication

/// Where a run is and what it has measured so far.
struct Progress {
    /// The next step to run: epoch and step within it.
    var epoch = 0
    var stepInEpoch = 0
    var summary = TrainingLoop.Summary()
    var window = LogWindow()
    /// What the last evaluation evaluated: the model as it is now, made whole.
    var evaluated: EvaluationTarget?
    /// Every evaluation so far: the accuracy curve.
    var curve: [AccuracyPoint] = []
    /// Seconds of the current epoch spent evaluating between its steps.
    var evaluationSecondsInEpoch = 0.0
}

/// One evaluation of the accuracy curve.
struct AccuracyPoint {
    /// Optimizer steps done.
    let step: Int
    /// Seconds spent training up to then (evaluations excluded).
    let trainSeconds: Double
    let accuracy: Double
}

/// The losses and time since the last progress line.
struct LogWindow {
    private(set) var lossSum = 0.0
    private(set) var steps = 0
    private(set) var samples = 0
    private(set) var start = MonotonicClock.seconds()

    mutating func add(_ loss: Double, samples: Int) {
        lossSum += loss
        steps += 1
        self.samples += samples
    }

    /// This rank's mean loss over the window.
    var meanLoss: Double { steps > 0 ? lossSum / Double(steps) : .nan }

    var seconds: Double { MonotonicClock.seconds() - start }

    mutating func restart() {
        lossSum = 0
        steps = 0
        samples = 0
        start = MonotonicClock.seconds()
    }
}
