import ChorusCLI

PipeTrain.main()
