__version__ = "0.5.0"
"""The version of numbaconv: major.minor.patch, following semantic versioning."""
