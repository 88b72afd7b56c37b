"""The sample system's fault catalogue and what reads it (docs, signals, control)."""
