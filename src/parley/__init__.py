"""Parley: self-hosted video meetings in one Python process."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("parley")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
