"""MedBrain: a hospital AI brain that runs on the hospital's own servers."""

__version__ = "0.1.0"
