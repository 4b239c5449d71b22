"""The models a run can train: the Transformer Program and the standard-transformer baseline."""

from __future__ import annotations

from torch import nn

from .program_config import ProgramConfig
from .program_model import TransformerProgram
from .standard import StandardConfig, StandardTransformer

MODEL_KINDS = ("program", "standard")


def training_bytes(kind: str, config: dict, batch_size: int) -> int:
    """A rough figure for the memory one training run of this model takes: its parameters with
    their gradients, Adam state and best-epoch copy, one batch's activations, and (for a
    program) the categorical MLPs' tables, which evaluation builds over every pair of values."""
    if kind == "program":
        c = ProgramConfig(**config)
        d, length, heads = c.d, c.max_len, c.heads_cat + c.heads_num
        n_cat = 2 + c.n_embed_vars + c.layers * (c.heads_cat + c.mlps_cat + c.mlps_num)
        per_layer = heads * d * d + c.mlps_cat * 3 * d * c.mlp_hidden + c.mlps_num * min(length ** c.layers, 1024) * d
        parameters = c.layers * per_layer + n_cat * d * c.n_labels + c.n_embed_vars * c.n_tokens * d
        activations = 8 * n_cat * batch_size * length * d + 4 * c.layers * heads * batch_size * length * length
        activations += c.mlps_cat * d * d * (c.mlp_hidden + d)  # CategoricalMLP.table: (M, d, d, hidden + d)
    elif kind == "standard":
        c = StandardConfig.from_dict(config)
        h = c.hidden
        parameters = c.layers * (4 * h * h + 2 * h * c.mlp_hidden) + (c.n_tokens + c.max_len + c.n_labels) * h
        activations = 12 * c.layers * batch_size * c.max_len * max(h, c.mlp_hidden)
        activations += 4 * c.layers * c.heads * batch_size * c.max_len * c.max_len
    else:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    return 4 * (5 * parameters + activations)  # float32


def build_model(kind: str, config: dict) -> nn.Module:
    """A fresh model of `kind` from its constructor arguments (as stored in config.json)."""
    if kind == "program":
        return TransformerProgram(ProgramConfig(**config))
    if kind == "standard":
        return StandardTransformer(StandardConfig.from_dict(config))
    raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
