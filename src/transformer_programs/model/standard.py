"""StandardTransformer: the ordinary transformer baseline trained on the same data as a program."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

# Keys of a run's model config (train.model_config) that describe Transformer Program parts with
# no counterpart here: the baseline has one MLP per layer, no learned categorical embeddings and
# ordinary softmax attention.
PROGRAM_ONLY = ("heads_cat", "heads_num", "mlps_cat", "mlps_num", "n_embed_vars", "attention", "d_values",
                "tokens_variable", "pruned", "unread")


@dataclass
class StandardConfig:
    """Everything needed to rebuild a StandardTransformer."""

    n_tokens: int  # input vocabulary size, <pad> included
    n_labels: int  # label vocabulary size, <pad> included (never predicted)
    max_len: int  # learned position embeddings 0..max_len-1: the longest sequence of any split
    layers: int = 3
    heads: int = 8  # attention heads per layer: heads_cat + heads_num of the program grid
    causal: bool = False  # queries see only earlier keys (dyck, induction)
    hidden: int = 256  # width of the residual stream (the paper's appendix baseline)
    mlp_hidden: int = 256  # hidden width of the one MLP per layer
    dropout: float = 0.0  # synthetic tasks have no noise to regularise against (word tasks: the paper's 0.5)
    pooled: bool = False  # one label per text, from the mean of the final states over real positions

    @classmethod
    def from_dict(cls, config: dict) -> "StandardConfig":
        """From a run's model config: heads = heads_cat + heads_num, program-only keys ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known - set(PROGRAM_ONLY))
        if unknown:
            raise ValueError(f"unknown standard-model setting(s): {', '.join(unknown)}")
        values = {k: v for k, v in config.items() if k in known}
        if "heads" not in values and ("heads_cat" in config or "heads_num" in config):
            values["heads"] = config.get("heads_cat", 0) + config.get("heads_num", 0)
        return cls(**values)

    @property
    def head_dim(self) -> int:
        """Width of each head's queries, keys and values."""
        return max(1, self.hidden // max(self.heads, 1))


class Attention(nn.Module):
    """Multi-head softmax self-attention over non-pad keys (and only earlier ones when causal)."""

    def __init__(self, config: StandardConfig):
        super().__init__()
        self.heads, self.head_dim, self.causal = config.heads, config.head_dim, config.causal
        inner = config.heads * config.head_dim
        self.qkv = nn.Linear(config.hidden, 3 * inner)
        self.out = nn.Linear(inner, config.hidden)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), valid (B, T) -> (B, T, D)."""
        batch, length, _ = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, H, T, h)
        eye = torch.eye(length, dtype=torch.bool)
        mask = valid[:, None, :] | eye  # (B, query, key): a query always sees itself, so no row is empty
        if self.causal:
            mask = mask & torch.ones(length, length, dtype=torch.bool).tril()
        dropout = self.dropout if self.training else 0.0
        mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None], dropout_p=dropout)  # (B, H, T, h)
        return self.out(mixed.transpose(1, 2).reshape(batch, length, -1))


class Block(nn.Module):
    """Pre-norm layer: attention (when it has heads), then one MLP, each added to the stream."""

    def __init__(self, config: StandardConfig):
        super().__init__()
        self.attn = Attention(config) if config.heads else None
        self.norm_attn = nn.LayerNorm(config.hidden) if config.heads else None
        self.norm_mlp = nn.LayerNorm(config.hidden)
        self.mlp = nn.Sequential(
            nn.Linear(config.hidden, config.mlp_hidden),
            nn.GELU(),
            nn.Linear(config.mlp_hidden, config.hidden),
            nn.Dropout(config.dropout),
        )

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), valid (B, T) -> (B, T, D)."""
        if self.attn is not None:
            x = x + self.attn(self.norm_attn(x), valid)
        return x + self.mlp(self.norm_mlp(x))


class StandardTransformer(nn.Module):
    """Learned token and position embeddings, softmax attention, MLPs, a linear head per position."""

    def __init__(self, config: StandardConfig):
        super().__init__()
        c = config
        if c.n_tokens < 2 or c.n_labels < 2 or c.max_len < 1 or c.layers < 0 or c.heads < 0 or c.hidden < 1:
            raise ValueError("a standard model needs tokens, labels, positions and a positive hidden size")
        self.config = config
        self.tokens = nn.Embedding(c.n_tokens, c.hidden)
        self.positions = nn.Embedding(c.max_len, c.hidden)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.hidden)
        self.head = nn.Linear(c.hidden, c.n_labels)

    @torch.no_grad()
    def initialise_tokens(self, vectors: torch.Tensor) -> None:
        """Start the token embeddings from word vectors (tokens, w), their first min(w, hidden) dims."""
        width = min(vectors.shape[1], self.config.hidden)
        self.tokens.weight[:, :width] = vectors[:, :width]

    def forward(
        self, tokens: torch.Tensor, tau: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Label logits (B, T, L); `tau` and `generator` exist for the trainer and are ignored."""
        batch, length = tokens.shape
        if length > self.config.max_len:
            raise ValueError(f"sequences of length {length} exceed the model's max_len {self.config.max_len}")
        valid = tokens != 0  # (B, T)
        x = self.tokens(tokens) + self.positions(torch.arange(length))  # (B, T, D)
        for block in self.blocks:
            x = block(x, valid)
        x = self.norm(x)  # (B, T, D)
        if self.config.pooled:  # every position reads the mean over real positions
            pooled = (x * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)  # (B, D)
            x = pooled[:, None, :].expand_as(x)  # (B, T, D)
        return self.head(x)  # (B, T, L)

    @torch.no_grad()
    def predict(self, tokens: torch.Tensor) -> torch.Tensor:
        """Predicted label ids (B, T): the best label other than <pad>."""
        return self.forward(tokens)[..., 1:].argmax(-1) + 1
