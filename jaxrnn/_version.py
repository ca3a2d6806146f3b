"""The package's version, read by the root package and the run files."""

__version__ = "0.1.0"
