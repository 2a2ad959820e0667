"""Hardening: hostile input, faults and concurrency, with nothing lost and nobody let in."""
