import Communication
import Coordination

extension TrainingLoop {
    /// Epochs of steps from the current position to the end of the run, each epoch
    /// followed by an evaluation.
    func train(_ run: PreparedRun, _ progress: inout Progress) throws {
        let firstEpoch = progress.epoch
        // A while loop, not `for ... where`: with a huge epoch count a filtered `for`
        // would go on counting epochs long after the step budget is spent.
        var epoch = firstEpoch
        while epoch < options.epochs && progress.summary.steps < run.totalSteps {
            defer { epoch += 1 }
            strategy.beginEpoch(epoch)
            let epochStart = MonotonicClock.seconds()
            progress.evaluationSecondsInEpoch = 0
            let firstStep = epoch == firstEpoch ? progress.stepInEpoch : 0
            for stepInEpoch in firstStep..<run.plan.stepsPerEpoch where progress.summary.steps < run.totalSteps {
                try step(run, &progress, epoch: epoch, stepInEpoch: stepInEpoch)
                if evaluatesWithinEpoch(run, afterStep: progress.summary.steps, stepInEpoch: stepInEpoch) {
                    let started = MonotonicClock.seconds()
                    let trained = progress.summary.trainSeconds + started - epochStart - progress.evaluationSecondsInEpoch
                    try evaluate(run, &progress, after: nil, started: started, trainSeconds: trained)
                    progress.evaluationSecondsInEpoch += MonotonicClock.seconds() - started
                    progress.window.restart()  // the next line's samples/s without the evaluation
                }
            }
            progress.summary.trainSeconds += MonotonicClock.seconds() - epochStart - progress.evaluationSecondsInEpoch
            try evaluate(run, &progress, after: epoch, started: epochStart, trainSeconds: progress.summary.trainSeconds)
            progress.window.restart()
        }
    }

    func step(_ run: PreparedRun, _ progress: inout Progress, epoch: Int, stepInEpoch: Int) throws {
        let steps = progress.summary.steps
        FaultInjection.check(rank: rank, step: steps)
        let outcome = try strategy.step(StepContext(epoch: epoch, stepInEpoch: stepInEpoch, step: steps,
                                                    learningRate: run.schedule.rate(atStep: steps),
                                                    synchronizes: communicates(run, afterStep: steps + 1, stepInEpoch: stepInEpoch)))
        progress.summary.steps += 1
        let samples = outcome.samples ?? run.plan.globalBatch
        progress.summary.samples += samples
        if outcome.skipped { progress.summary.skippedSteps += 1 }
        try checkpointIfDue(run, progress, epoch: epoch, stepInEpoch: stepInEpoch)
        progress.window.add(outcome.loss, samples: samples)

        let done = progress.summary.steps
        if logsProgress(run, afterStep: done, stepInEpoch: stepInEpoch) {
            progress.summary.finalLoss = reportedLoss(run, progress.window, afterStep: done)
            let rate = Double(progress.window.samples) / progress.window.seconds
            let position = run.plan.countsEpochs
                ? "epoch \(epoch + 1)/\(options.epochs) step \(stepInEpoch + 1)/\(run.plan.stepsPerEpoch)"
                : "\(run.plan.stepName) \(done)/\(run.totalSteps)"
            ConsoleLog.progress(position + " loss \(Formatting.decimals(progress.summary.finalLoss, 4)) samples/s \(Int(rate.rounded()))"
                                + (strategy.progressDetail().map { " \($0)" } ?? ""), rank: rank)
            progress.window.restart()
        }
    }

    func logsProgress(_ run: PreparedRun, afterStep done: Int, stepInEpoch: Int) -> Bool {
        done % options.logEvery == 0 || done == run.totalSteps || stepInEpoch == run.plan.stepsPerEpoch - 1
    }

    /// An evaluation of its own after this step: one every `evaluateEvery` steps
    /// that is not the epoch's last (which evaluates anyway) nor the run's.
    func evaluatesWithinEpoch(_ run: PreparedRun, afterStep done: Int, stepInEpoch: Int) -> Bool {
        options.evaluateEvery > 0 && done % options.evaluateEvery == 0 && stepInEpoch < run.plan.stepsPerEpoch - 1
            && done < run.totalSteps
    }

    /// Whether the loop's ranks communicate once `done` steps are done: to write a
    /// checkpoint, to evaluate, to finish, or to reduce a progress line's loss.
    func communicates(_ run: PreparedRun, afterStep done: Int, stepInEpoch: Int) -> Bool {
        let checkpoint = (options.checkpoints?.isDue(afterStep: done, totalSteps: run.totalSteps) ?? false)
            || evaluatesWithinEpoch(run, afterStep: done, stepInEpoch: stepInEpoch)
        let reducesLoss: Bool
        if case .mean = run.plan.lossReporting { reducesLoss = logsProgress(run, afterStep: done, stepInEpoch: stepInEpoch) } else {
            reducesLoss = false
        }
        return checkpoint || reducesLoss || stepInEpoch == run.plan.stepsPerEpoch - 1 || done == run.totalSteps
    }

    /// The window's loss as the strategy says to combine it.
    func reportedLoss(_ run: PreparedRun, _ window: LogWindow, afterStep step: Int) -> Double {
        switch run.plan.lossReporting {
        case .mean(let group, let contributors):
            run.watchdog.waiting(for: "the loss all-reduce after step \(step)") {
                group.allreduce(window.meanLoss, op: .sum) / Double(contributors)
            }
        case .local:
            window.meanLoss
        }
    }

    /// Test accuracy of the model as it is now: after an epoch, within one (`epoch`
    /// nil, `trainSeconds` given), or at the end of a run that trained no epoch.
    func evaluate(_ run: PreparedRun, _ progress: inout Progress, after epoch: Int?, started: Double,
                  trainSeconds: Double? = nil) throws {
        let target = try strategy.prepareEvaluation()
        let steps = progress.summary.steps
        let what = epoch.map { "the evaluation after epoch \($0 + 1)" }
            ?? (trainSeconds == nil ? "the final evaluation" : "the evaluation after step \(steps)")
        let accuracy = run.watchdog.waiting(for: what) { evaluateAccuracy(target.model, on: run.data.test, over: target.group) }
        if let epoch, run.plan.countsEpochs {
            ConsoleLog.info("epoch \(epoch + 1) done: test accuracy \(Formatting.percent(accuracy)) on \(run.data.test.count) "
                            + "images, \(Formatting.decimals(MonotonicClock.seconds() - started, 1)) s", rank: rank)
        } else if trainSeconds != nil {
            ConsoleLog.info("\(run.plan.stepName) \(steps): test accuracy \(Formatting.percent(accuracy))", rank: rank)
        }
        strategy.evaluated(afterStep: steps, accuracy: accuracy)
        if let trainSeconds { progress.curve.append(AccuracyPoint(step: steps, trainSeconds: trainSeconds, accuracy: accuracy)) }
        progress.summary.testAccuracy = accuracy
        progress.evaluated = target
    }
}
