"""Exercises of the notebook A-cifar10."""
