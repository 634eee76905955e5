"""Benchmarks, each run as ``python -m bench.NAME``; figures and method in bench/README.md."""
