"""Transformer Programs: train a transformer that is a program, then read, run and debug it."""


def load(path):
    """The run in directory `path`, for notebooks (see transformer_programs.api.Run)."""
    from .api import load as load_run

    return load_run(path)
