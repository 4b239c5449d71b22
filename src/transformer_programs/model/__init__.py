"""The models a run can train: the Transformer Program and the standard-transformer baseline."""

from __future__ import annotations

from torch import nn

from .program_model import ProgramConfig, TransformerProgram
from .standard import StandardConfig, StandardTransformer

MODEL_KINDS = ("program", "standard")


def build_model(kind: str, config: dict) -> nn.Module:
    """A fresh model of `kind` from its constructor arguments (as stored in config.json)."""
    if kind == "program":
        return TransformerProgram(ProgramConfig(**config))
    if kind == "standard":
        return StandardTransformer(StandardConfig.from_dict(config))
    raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
