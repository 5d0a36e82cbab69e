"""Exercises of the notebook 06-regularization."""
