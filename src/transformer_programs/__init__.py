"""Transformer Programs: train a transformer that is a program, then read, run and debug it."""

from importlib import metadata

try:
    __version__ = metadata.version("transformer-programs")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"


def load(path):
    """The run in directory `path`, for notebooks (see transformer_programs.api.Run)."""
    from .api import load as load_run

    return load_run(path)
