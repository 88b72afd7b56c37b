"""Benchmarks for o11ykit (run as modules, e.g. ``python -m benchmarks.overhead.run``)."""
