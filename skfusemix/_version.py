"""The version of skfusemix (read by the package metadata)."""

__version__ = "0.1.0.dev0"
