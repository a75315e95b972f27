__version__ = "0.5.2"
"""The version of numbaconv: major.minor.patch, following semantic versioning."""
