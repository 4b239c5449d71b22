"""TransformerProgram: the discrete transformer of "Learning Transformer Programs".

The residual stream is a list of categorical variables (each a one-hot over the shared value
space `0..d-1`) and numerical variables (scalars). Layer by layer, attention heads and MLPs each
add one variable. `forward` is the relaxed model trained with Gumbel-softmax; `discrete` is the
argmax model, the one every reported accuracy measures and the one programs are extracted from.
Its rules are written down in docs/semantics.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import (
    CategoricalAttention,
    CategoricalMLP,
    LearnedEmbedding,
    NumericalAttention,
    NumericalMLP,
    mix,
)


MAX_COUNT_ROWS = 1024  # learned rows per numerical MLP; larger counts share the last row
ATTENTION_KINDS = ("sharp", "soft")  # relaxed categorical attention (layers.CategoricalAttention)


@dataclass
class ProgramConfig:
    """Everything needed to rebuild a TransformerProgram."""

    n_tokens: int  # input vocabulary size, <pad> included
    n_labels: int  # label vocabulary size, <pad> included (never predicted)
    max_len: int  # positions 0..max_len-1: the longest sequence of any split
    layers: int = 3
    heads_cat: int = 4  # categorical attention heads per layer
    heads_num: int = 4  # numerical attention heads per layer
    mlps_cat: int = 2  # categorical MLPs per layer
    mlps_num: int = 2  # numerical MLPs per layer
    n_embed_vars: int = 0  # learned categorical token embeddings beside the one-hot tokens
    causal: bool = False  # queries see only earlier keys (dyck, induction)
    mlp_hidden: int = 64  # hidden width of every categorical MLP before it is read off as a table
    # Training only, the discrete model is the same: "sharp" attention reads the nearest match
    # from the start; "soft" (the paper's log-match logits) averages over likely matches while
    # the temperature is high, which dyck2 needs (README, Results) and induction cannot bear.
    attention: str = "sharp"

    @property
    def d(self) -> int:
        """Size of the shared value space of categorical variables."""
        return max(self.n_tokens, self.max_len)

    def to_dict(self) -> dict:
        return asdict(self)


def variable_layout(config: ProgramConfig) -> list[tuple[str, str]]:
    """(name, "cat" | "num") of every variable, in the order of docs/semantics.md."""
    layout = [("tokens", "cat"), ("positions", "cat")]
    layout += [(f"embed_{k}", "cat") for k in range(config.n_embed_vars)]
    layout.append(("ones", "num"))
    for layer in range(config.layers):
        layout += [(f"attn_{layer}_{h}", "cat") for h in range(config.heads_cat)]
        layout += [(f"num_attn_{layer}_{h}", "num") for h in range(config.heads_num)]
        layout += [(f"mlp_{layer}_{m}", "cat") for m in range(config.mlps_cat)]
        layout += [(f"num_mlp_{layer}_{m}", "cat") for m in range(config.mlps_num)]
    return layout


class Block(nn.Module):
    """One layer: attention heads read the stream, then MLPs read it with the heads' outputs."""

    def __init__(self, config: ProgramConfig, n_cat: int, n_num: int, layer: int):
        super().__init__()
        c, d = config, config.d
        soft = c.attention == "soft"
        self.cat_attn = CategoricalAttention(c.heads_cat, n_cat, d, c.causal, c.max_len, soft) if c.heads_cat else None
        self.num_attn = NumericalAttention(c.heads_num, n_cat, n_num, d, c.causal) if c.heads_num else None
        n_cat_mlp_in, n_num_mlp_in = n_cat + c.heads_cat, n_num + c.heads_num
        self.cat_mlp = CategoricalMLP(c.mlps_cat, n_cat_mlp_in, d, c.mlp_hidden) if c.mlps_cat else None
        # Counts this layer's MLPs can read: up to max_len**(layer + 1) (docs/semantics.md), rows capped.
        max_count = min(c.max_len ** (layer + 1), MAX_COUNT_ROWS)
        self.num_mlp = NumericalMLP(c.mlps_num, n_num_mlp_in, d, max_count) if c.mlps_num else None

    def forward(self, chunks: list[torch.Tensor], num: torch.Tensor, valid: torch.Tensor, tau: float, gen):
        """Relaxed path: categorical chunks (V_c, B, T, d) and num (N, B, T) -> both with this layer's added."""
        _, batch, length, d = chunks[0].shape
        chunks = list(chunks)
        cat_attn, num_attn = self.cat_attn, self.num_attn
        # One selection product reads every query, key and value of the layer's heads.
        selectors = [cat_attn.query, cat_attn.key, cat_attn.value] if cat_attn else []
        selectors += [num_attn.query, num_attn.key] if num_attn else []
        if selectors:
            mixed = mix(chunks, torch.cat([s.weights(tau, gen) for s in selectors]))  # (S, B, T, d)
            parts = list(mixed.split([s.logits.shape[0] for s in selectors]))  # each (H, B, T, d)
        if cat_attn:
            chunks.append(cat_attn.relaxed(*parts[:3], valid, tau, gen))  # (H, B, T, d)
        if num_attn:
            values = (num_attn.value.weights(tau, gen) @ num.flatten(1)).view(-1, batch, length)  # (H, B, T)
            out = num_attn.relaxed(*parts[-2:], values, valid, tau, gen)  # (H, B, T)
            num = torch.cat([num, out])  # (N + H, B, T)
        outputs = []
        if self.cat_mlp:
            weights = torch.cat([self.cat_mlp.first.weights(tau, gen), self.cat_mlp.second.weights(tau, gen)])
            a, b = mix(chunks, weights).view(2, -1, batch * length, d)  # 2 x (M, B*T, d)
            outputs.append(self.cat_mlp.relaxed(a, b, tau, gen))  # (M, B*T, d)
        if self.num_mlp:
            x = self.num_mlp.source.weights(tau, gen) @ num.flatten(1)  # (M, B*T)
            outputs.append(self.num_mlp.relaxed(x, tau, gen))  # (M, B*T, d)
        if outputs:
            chunks.append(torch.cat(outputs).view(-1, batch, length, d))  # (M, B, T, d)
        return chunks, num

    def discrete(self, cat, num, valid, num_bounds):
        """Discrete path: cat (B, T, V) ids, num (B, T, N) int64 -> both with this layer's added."""
        new_cat = [self.cat_attn.discrete(cat, valid)] if self.cat_attn else []  # (B, T, H)
        new_num = [self.num_attn.discrete(cat, num, valid)] if self.num_attn else []  # (B, T, H)
        cat, num = torch.cat([cat, *new_cat], dim=2), torch.cat([num, *new_num], dim=2)
        mlp_out = [self.cat_mlp.discrete(cat)] if self.cat_mlp else []  # (B, T, M)
        if self.num_mlp:
            bounds = [num_bounds[i] for i in self.num_mlp.source.choice().tolist()]
            mlp_out.append(self.num_mlp.discrete(num, bounds))  # (B, T, M)
        return torch.cat([cat, *mlp_out], dim=2), num

    def numerical_bounds(self, bounds: list[int], max_len: int) -> list[int]:
        """Largest reachable value of each numerical variable, with this layer's heads added."""
        if not self.num_attn:
            return bounds
        return bounds + [max_len * bounds[i] for i in self.num_attn.value.choice().tolist()]


class TransformerProgram(nn.Module):
    """A transformer whose every part is a discrete choice once trained."""

    def __init__(self, config: ProgramConfig):
        super().__init__()
        self.config = config
        c = config
        if c.n_tokens < 2 or c.n_labels < 2 or c.max_len < 1 or c.layers < 0:
            raise ValueError("a model needs at least one token, one label, one position")
        if c.attention not in ATTENTION_KINDS:
            raise ValueError(f"unknown attention {c.attention!r}; choose one of {', '.join(ATTENTION_KINDS)}")
        self.embed = LearnedEmbedding(c.n_embed_vars, c.n_tokens, c.d) if c.n_embed_vars else None
        n_cat, n_num = 2 + c.n_embed_vars, 1
        self.blocks = nn.ModuleList()
        for layer in range(c.layers):
            self.blocks.append(Block(c, n_cat, n_num, layer))
            n_cat += c.heads_cat + c.mlps_cat + c.mlps_num
            n_num += c.heads_num
        self.n_cat, self.n_num = n_cat, n_num
        self.classifier_cat = nn.Parameter(torch.zeros(n_cat, c.d, c.n_labels))  # (V, d, L)
        self.classifier_num = nn.Parameter(torch.zeros(n_num, c.n_labels))  # (N, L)
        self.classifier_bias = nn.Parameter(torch.zeros(c.n_labels))  # (L,)
        nn.init.normal_(self.classifier_cat, std=0.1)

    def _inputs(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and position ids for a batch, checking the position range."""
        batch, length = tokens.shape
        if length > self.config.max_len:
            raise ValueError(f"sequences of length {length} exceed the model's max_len {self.config.max_len}")
        positions = torch.arange(length).expand(batch, -1)  # (B, T)
        return tokens, positions

    def forward(self, tokens: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Relaxed model: label logits (B, T, L). Gumbel noise is drawn from `generator` if given."""
        tokens, positions = self._inputs(tokens)  # (B, T)
        d = self.config.d
        valid = tokens != 0  # (B, T)
        dtype = self.classifier_bias.dtype
        chunks = [torch.stack([F.one_hot(tokens, d), F.one_hot(positions, d)]).to(dtype)]  # (2, B, T, d)
        if self.embed is not None:
            chunks.append(self.embed(tokens, tau, generator))  # (E, B, T, d)
        num = torch.ones(1, *tokens.shape, dtype=dtype)  # (1, B, T)
        for block in self.blocks:
            chunks, num = block(chunks, num, valid, tau, generator)
        stream = torch.cat(chunks).flatten(1, 2).transpose(0, 1).flatten(1)  # (B*T, V*d)
        logits = torch.addmm(self.classifier_bias, stream, self.classifier_cat.flatten(0, 1))  # (B*T, L)
        logits = torch.addmm(logits, num.flatten(1).T, self.classifier_num)  # (B*T, L)
        return logits.view(*tokens.shape, -1)  # (B, T, L)

    @torch.no_grad()
    def discrete(self, tokens: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Argmax model: predicted label ids (B, T) and every variable's values by name."""
        tokens, positions = self._inputs(tokens)  # (B, T)
        valid = tokens != 0  # (B, T)
        cat = torch.stack([tokens, positions], dim=2)  # (B, T, 2)
        if self.embed is not None:
            cat = torch.cat([cat, self.embed.discrete(tokens)], dim=2)  # (B, T, 2+E)
        num = torch.ones(*tokens.shape, 1, dtype=torch.long)  # (B, T, 1)
        bounds = [1]
        for block in self.blocks:
            bounds = block.numerical_bounds(bounds, self.config.max_len)
            cat, num = block.discrete(cat, num, valid, bounds)
        trace = self._trace(cat, num)
        return self.classify(trace), trace

    def predict(self, tokens: torch.Tensor) -> torch.Tensor:
        """Predicted label ids (B, T) of the discretized model."""
        return self.discrete(tokens)[0]

    def _trace(self, cat: torch.Tensor, num: torch.Tensor) -> dict[str, torch.Tensor]:
        """Name every variable's (B, T) values, in variable order."""
        trace, counters = {}, {"cat": 0, "num": 0}
        for name, kind in variable_layout(self.config):
            source = cat if kind == "cat" else num
            trace[name] = source[:, :, counters[kind]]  # (B, T)
            counters[kind] += 1
        return trace

    def classify(self, trace: dict[str, torch.Tensor]) -> torch.Tensor:
        """Classifier of docs/semantics.md: float64 scores summed in variable order -> label ids."""
        weights_cat = self.classifier_cat.detach().double()  # (V, d, L)
        weights_num = self.classifier_num.detach().double()  # (N, L)
        first = next(iter(trace.values()))  # (B, T)
        score = self.classifier_bias.detach().double().expand(*first.shape, -1).clone()  # (B, T, L)
        counters = {"cat": 0, "num": 0}
        for name, kind in variable_layout(self.config):
            values = trace[name]  # (B, T)
            index = counters[kind]
            counters[kind] += 1
            if kind == "cat":
                score = score + weights_cat[index][values]  # (B, T, L)
            else:
                score = score + weights_num[index] * values[..., None].double()  # (B, T, L)
        return score[..., 1:].argmax(-1) + 1  # (B, T): first maximal label, never <pad>
