"""Versioned clinical and reference data files and their loaders; every rule cites its source."""
