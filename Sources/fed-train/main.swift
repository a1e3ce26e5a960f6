import ChorusCLI

FedTrain.main()
