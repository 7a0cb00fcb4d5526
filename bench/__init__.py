"""Benchmarks, run on demand (never part of the test run): see bench/README.md."""
