__version__ = "0.4.3"
"""The version of numbaconv: major.minor.patch, following semantic versioning."""
