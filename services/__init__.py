"""Pointillist: single-molecule localization microscopy analysis as services."""

__version__ = "0.1.0"
