"""Benchmarks that print measured figures and ratios: python -m bench.<name>, or python -m bench for all."""
