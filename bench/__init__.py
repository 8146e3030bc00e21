"""Benchmarks, run by hand: `python -m bench [NAME ...] [--quick]` (see bench/README.md)."""
