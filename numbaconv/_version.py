__version__ = "0.5.1"
"""The version of numbaconv: major.minor.patch, following semantic versioning."""
