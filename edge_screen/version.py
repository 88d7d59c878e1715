"""The runtime's version: the package's, and what a bundle's ``min_runtime`` is compared with."""

__version__ = "0.1.0"
