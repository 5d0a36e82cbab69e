"""Exercises of the notebook 02-pooling."""
