"""Exercises of the notebook 05-optimization."""
