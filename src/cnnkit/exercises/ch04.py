"""Exercises of the notebook 04-loss."""
