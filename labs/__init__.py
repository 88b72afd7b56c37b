"""Guided, graded labs and incident drills on the sample system (content as data)."""
