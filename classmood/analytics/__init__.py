"""Class-level aggregates of per-face apparent expressions."""
