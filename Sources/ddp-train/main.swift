import ChorusCLI

DDPTrain.main()
