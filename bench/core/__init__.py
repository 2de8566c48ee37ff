"""What every part of forgetbench stands on: errors, settings, the training budget, threads, the content-addressed
store, the environment's provenance, the registry. Imports nothing else of forgetbench."""
