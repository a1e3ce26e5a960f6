import ChorusCLI

PSTrain.main()
