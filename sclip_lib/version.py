"""The installed version, written once (pyproject.toml; CITATION.cff is checked against it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sclip_lib")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
