"""Exercises of the notebook 03-activations."""
