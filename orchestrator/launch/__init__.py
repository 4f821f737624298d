"""Starting runs: the command line, one experiment, Ray, the warm start, Ray Train, Tune sweeps."""
