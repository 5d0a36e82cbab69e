"""Exercises of the notebook 08-inside-the-model."""
