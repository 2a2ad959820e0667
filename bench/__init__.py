"""Benchmarks run on the lab (`make bench`): `python -m bench.sweep` compares ARP sweeps."""
