"""Benchmarks run on the lab: `make bench` (`python -m bench`) writes bench/RESULTS.md."""
