"""Benchmarks that print measured figures: robustness of the expression models to real-call degradations."""
