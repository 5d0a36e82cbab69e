"""Exercises of the notebook 07-simple-cnn-mnist."""
