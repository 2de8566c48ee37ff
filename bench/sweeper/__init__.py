"""Many runs: a sweep's design (methods x configurations x seeds) and the executors that run it."""
