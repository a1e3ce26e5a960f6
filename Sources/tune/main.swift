import ChorusCLI

Tune.main()
