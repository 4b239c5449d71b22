"""TransformerProgram: the discrete transformer of "Learning Transformer Programs".

The residual stream is a list of categorical variables (each a one-hot over the shared value
space `0..d-1`) and numerical variables (scalars). Layer by layer, attention heads and MLPs each
add one variable. `forward` is the relaxed model trained with Gumbel-softmax; `discrete` is the
argmax model, the one every reported accuracy measures and the one programs are extracted from.
Its rules are written down in docs/semantics.md.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from .gates import Gates
from .layers import (
    CategoricalAttention,
    CategoricalMLP,
    LearnedEmbedding,
    NumericalAttention,
    NumericalMLP,
    mix,
)
from .points import round_in_place, rounded
from .program_config import ATTENTION_KINDS, ProgramConfig, check_pruning, layer_layout, part_names, variable_layout

MAX_COUNT_ROWS = 1024  # learned rows per numerical MLP; larger counts share the last row


class Block(nn.Module):
    """One layer: attention heads read the stream, then MLPs read it with the heads' outputs."""

    def __init__(self, config: ProgramConfig, n_cat: int, n_num: int, layer: int):
        super().__init__()
        c, d = config, config.d
        self.d = d
        self.dropout = c.dropout
        sizes = [c.heads_cat, c.heads_num, c.mlps_cat, c.mlps_num]
        bounds = [sum(sizes[:n]) for n in range(5)]
        self.slices = [slice(low, high) for low, high in zip(bounds, bounds[1:])]  # attn, num_attn, mlp, num_mlp
        # Which outputs pruning keeps, and the constants of the others (TransformerProgram.set_pruning):
        # derived from the config, so not saved with the weights.
        self.register_buffer("kept", torch.ones(bounds[-1], dtype=torch.bool), persistent=False)
        self.register_buffer("constant", torch.zeros(bounds[-1], dtype=torch.long), persistent=False)
        soft = c.attention == "soft"
        self.cat_attn = CategoricalAttention(c.heads_cat, n_cat, d, c.causal, c.max_len, soft) if c.heads_cat else None
        self.num_attn = NumericalAttention(c.heads_num, n_cat, n_num, d, c.causal) if c.heads_num else None
        n_cat_mlp_in, n_num_mlp_in = n_cat + c.heads_cat, n_num + c.heads_num
        self.cat_mlp = CategoricalMLP(c.mlps_cat, n_cat_mlp_in, d, c.mlp_hidden) if c.mlps_cat else None
        # Counts this layer's MLPs can read: up to max_len**(layer + 1) (docs/semantics.md), rows capped.
        max_count = min(c.max_len ** (layer + 1), MAX_COUNT_ROWS)
        self.num_mlp = NumericalMLP(c.mlps_num, n_num_mlp_in, d, max_count) if c.mlps_num else None

    def _relaxed_kept(self, out: torch.Tensor, group: int, keep: torch.Tensor | None, gen) -> torch.Tensor:
        """Outputs (n, B, T, d) soft one-hots or (n, B, T) counts, after dropout (in training),
        mixed with their constants by `keep` (n_outputs,): 1 computed, 0 pruned."""
        if self.training and self.dropout:
            kept = torch.rand(out.shape, generator=gen) >= self.dropout  # same shape as out
            out = out * kept / (1 - self.dropout)
        if keep is None:
            return out
        part = self.slices[group]
        weight = keep[part].view(-1, *[1] * (out.dim() - 1))  # (n, 1, 1[, 1])
        constant = self.constant[part]  # (n,)
        if out.dim() == 4:
            constant = F.one_hot(constant, self.d).to(out.dtype)[:, None, None, :]  # (n, 1, 1, d)
        else:
            constant = constant.to(out.dtype)[:, None, None]  # (n, 1, 1)
        return weight * out + (1 - weight) * constant

    def _discrete_kept(self, out: torch.Tensor, group: int) -> torch.Tensor:
        """Outputs (B, T, n) with pruned ones replaced by their constants."""
        part = self.slices[group]
        return torch.where(self.kept[part], out, self.constant[part])

    def forward(self, chunks: list[torch.Tensor], num: torch.Tensor, valid: torch.Tensor, tau: float, gen,
                gates: torch.Tensor | None = None):
        """Relaxed path: categorical chunks (V_c, B, T, d) and num (N, B, T) -> both with this layer's
        added; each output weighted by its gate (n_outputs,) where given, pruned ones constant."""
        keep = None if bool(self.kept.all()) else self.kept.to(num.dtype)  # (n_outputs,): pruned outputs are constants
        if gates is not None:
            keep = gates if keep is None else keep * gates  # (n_outputs,)
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
            out = cat_attn.relaxed(*parts[:3], valid, tau, gen)  # (H, B, T, d)
            chunks.append(self._relaxed_kept(out, 0, keep, gen))  # (H, B, T, d)
        if num_attn:
            values = (num_attn.value.weights(tau, gen) @ num.flatten(1)).view(-1, batch, length)  # (H, B, T)
            out = num_attn.relaxed(*parts[-2:], values, valid, tau, gen)  # (H, B, T)
            num = torch.cat([num, self._relaxed_kept(out, 1, keep, gen)])  # (N + H, B, T)
        outputs = []
        if self.cat_mlp:
            weights = torch.cat([self.cat_mlp.first.weights(tau, gen), self.cat_mlp.second.weights(tau, gen)])
            a, b = mix(chunks, weights).view(2, -1, batch * length, d)  # 2 x (M, B*T, d)
            out = self.cat_mlp.relaxed(a, b, tau, gen).view(-1, batch, length, d)  # (M, B, T, d)
            outputs.append(self._relaxed_kept(out, 2, keep, gen))
        if self.num_mlp:
            x = self.num_mlp.source.weights(tau, gen) @ num.flatten(1)  # (M, B*T)
            out = self.num_mlp.relaxed(x, tau, gen).view(-1, batch, length, d)  # (M, B, T, d)
            outputs.append(self._relaxed_kept(out, 3, keep, gen))
        if outputs:
            chunks.append(torch.cat(outputs))  # (M, B, T, d)
        return chunks, num

    def discrete(self, cat, num, valid, num_bounds):
        """Discrete path: cat (B, T, V) ids, num (B, T, N) int64 -> both with this layer's added."""
        new_cat = [self._discrete_kept(self.cat_attn.discrete(cat, valid), 0)] if self.cat_attn else []  # (B, T, H)
        new_num = [self._discrete_kept(self.num_attn.discrete(cat, num, valid), 1)] if self.num_attn else []
        cat, num = torch.cat([cat, *new_cat], dim=2), torch.cat([num, *new_num], dim=2)
        mlp_out = [self._discrete_kept(self.cat_mlp.discrete(cat), 2)] if self.cat_mlp else []  # (B, T, M)
        if self.num_mlp:
            bounds = [num_bounds[i] for i in self.num_mlp.source.choice().tolist()]
            mlp_out.append(self._discrete_kept(self.num_mlp.discrete(num, bounds), 3))  # (B, T, M)
        return torch.cat([cat, *mlp_out], dim=2), num

    def numerical_bounds(self, bounds: list[int], max_len: int) -> list[int]:
        """Largest reachable value of each numerical variable, with this layer's heads added (a
        pruned head's is its constant)."""
        if not self.num_attn:
            return bounds
        sources = self.num_attn.value.choice().tolist()
        kept, constant = self.kept[self.slices[1]].tolist(), self.constant[self.slices[1]].tolist()
        return bounds + [max_len * bounds[i] if k else c for i, k, c in zip(sources, kept, constant)]


def linear_readout(chunks: list[torch.Tensor], num: torch.Tensor, weights_cat: torch.Tensor,
                   weights_num: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The relaxed classifier's logits (B*T, L): bias, plus each numerical variable (N, B, T) times its
    row of `weights_num` (N, L), plus each soft one-hot of `chunks` ((C, B, T, d) each, V in all)
    through its (d, L) block of `weights_cat` (V, d, L).

    Chunk by chunk: the whole stream as one (B*T, V*d) matrix needs a transposed copy of it, which
    made a training step 1.12-1.22 times slower (benchmarks/classifier_by_chunk.py).
    """
    logits = torch.addmm(bias, num.flatten(1).T, weights_num)  # (B*T, L)
    for chunk, weights in zip(chunks, weights_cat.split([len(chunk) for chunk in chunks])):
        logits = logits + torch.bmm(chunk.flatten(1, 2), weights).sum(0)  # (C, B*T, d) @ (C, d, L) -> (B*T, L)
    return logits


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
        if c.tokens_variable and c.n_tokens > c.d:
            raise ValueError(f"{c.n_tokens} token ids do not fit a value space of {c.d}; raise d_values (tprog: --values)")
        if not 0 <= c.dropout < 1:
            raise ValueError(f"dropout must be at least 0 and below 1, got {c.dropout}")
        self.embed = LearnedEmbedding(c.n_embed_vars, c.n_tokens, c.d) if c.n_embed_vars else None
        n_cat, n_num = int(c.tokens_variable) + 1 + c.n_embed_vars, 1
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
        self.register_buffer("read_cat", torch.ones(n_cat, dtype=torch.bool), persistent=False)  # (V,)
        self.register_buffer("read_num", torch.ones(n_num, dtype=torch.bool), persistent=False)  # (N,)
        self.base_pruning = (dict(c.pruned), list(c.unread))  # the config's own; closed gates add to it
        self.part_gates = Gates(len(part_names(c))) if c.gates else None  # one per layer output
        self.read_gates = Gates(n_cat + n_num) if c.gates else None  # one per variable, in variable order
        self.set_pruning(c.pruned, c.unread)
        self.points = False  # whether the classifier's weights are read rounded to classifier_step (training sets it)

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
        inputs = [tokens, positions] if self.config.tokens_variable else [positions]
        chunks = [torch.stack([F.one_hot(ids, d) for ids in inputs]).to(dtype)]  # (1 or 2, B, T, d)
        if self.embed is not None:
            chunks.append(self.embed(tokens, tau, generator))  # (E, B, T, d)
        num = torch.ones(1, *tokens.shape, dtype=dtype)  # (1, B, T)
        gated = self.part_gates is not None and self.training
        part_gates = self.part_gates.sample(generator).split(self.outputs_per_layer()) if gated else [None] * len(self.blocks)
        for block, gates in zip(self.blocks, part_gates):
            chunks, num = block(chunks, num, valid, tau, generator, gates)
        weights_cat, weights_num, bias = self.classifier_cat, self.classifier_num, self.classifier_bias  # (V, d, L), (N, L), (L,)
        if self.points:
            weights_cat, weights_num, bias = (rounded(w, self.config.classifier_step) for w in (weights_cat, weights_num, bias))
        if gated:
            read_cat, read_num = self._split_by_kind(self.read_gates.sample(generator))  # (V,), (N,)
            weights_cat, weights_num = weights_cat * read_cat[:, None, None], weights_num * read_num[:, None]
        if not (bool(self.read_cat.all()) and bool(self.read_num.all())):  # pruning: variables it does not read
            weights_cat = weights_cat * self.read_cat[:, None, None]  # (V, d, L)
            weights_num = weights_num * self.read_num[:, None]  # (N, L)
        logits = linear_readout(chunks, num, weights_cat, weights_num, bias).view(*tokens.shape, -1)  # (B, T, L)
        if self.config.pooled:  # the classifier of every variable's mean over real positions, everywhere
            counts = valid.sum(1, keepdim=True).to(dtype)  # (B, 1)
            pooled = ((logits - bias) * valid[..., None]).sum(1) / counts  # (B, L)
            logits = (pooled + bias)[:, None, :].expand_as(logits)  # (B, T, L)
        return logits

    def set_pruning(self, pruned: dict[str, int], unread: list[str]) -> None:
        """Replace the model's pruning (its config and the masks derived from it), weights untouched."""
        config = replace(self.config, pruned=dict(pruned), unread=list(unread))
        check_pruning(config)
        self.config = config
        for layer, block in enumerate(self.blocks):
            names = [name for name, _ in layer_layout(config, layer)]
            block.kept.copy_(torch.tensor([name not in pruned for name in names], dtype=torch.bool))
            block.constant.copy_(torch.tensor([pruned.get(name, 0) for name in names], dtype=torch.long))
        reads = torch.tensor([name not in unread for name, _ in variable_layout(config)])  # (V+N,)
        read_cat, read_num = self._split_by_kind(reads)
        self.read_cat.copy_(read_cat)
        self.read_num.copy_(read_num)

    def outputs_per_layer(self) -> list[int]:
        """How many parts (layer outputs) each layer adds."""
        c = self.config
        return [c.heads_cat + c.heads_num + c.mlps_cat + c.mlps_num] * c.layers

    def sparsity_penalty(self, target_parts: int = 0) -> torch.Tensor:
        """The expected number of open gates (0 for a model without gates): the L0 term of the loss.
        With `target_parts`, the parts count only where more than that many are expected open."""
        if self.part_gates is None:
            return torch.zeros(())
        parts = self.part_gates.open_probability().sum()
        if target_parts:
            parts = F.relu(parts - target_parts)
        return parts + self.read_gates.open_probability().sum()

    def apply_gates(self) -> None:
        """Prune every part and unread every variable whose gate is closed, beside the config's own
        pruning (a model without gates is left as it is)."""
        if self.part_gates is None:
            return
        pruned, unread = self.base_pruning
        parts = zip(part_names(self.config), self.part_gates.closed().tolist())
        closed = {name: 0 for name, shut in parts if shut and name not in pruned}
        variables = zip([name for name, _ in variable_layout(self.config)], self.read_gates.closed().tolist())
        self.set_pruning({**pruned, **closed}, [*unread, *(name for name, shut in variables if shut and name not in unread)])

    def round_classifier(self) -> None:
        """Where the classifier trains as points (`self.points`), its weights set to their multiples of the step."""
        if self.points:
            round_in_place([self.classifier_cat, self.classifier_num, self.classifier_bias], self.config.classifier_step)

    def _split_by_kind(self, per_variable: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A (V+N,) tensor in variable order -> its categorical (V,) and numerical (N,) entries."""
        is_cat = torch.tensor([kind == "cat" for _, kind in variable_layout(self.config)])  # (V+N,)
        return per_variable[is_cat], per_variable[~is_cat]

    @torch.no_grad()
    def discrete(self, tokens: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Argmax model: predicted label ids (B, T) and every variable's values by name."""
        tokens, positions = self._inputs(tokens)  # (B, T)
        valid = tokens != 0  # (B, T)
        cat = torch.stack([tokens, positions] if self.config.tokens_variable else [positions], dim=2)  # (B, T, 1|2)
        if self.embed is not None:
            cat = torch.cat([cat, self.embed.discrete(tokens)], dim=2)  # (B, T, 1|2 + E)
        num = torch.ones(*tokens.shape, 1, dtype=torch.long)  # (B, T, 1)
        bounds = [1]
        for block in self.blocks:
            bounds = block.numerical_bounds(bounds, self.config.max_len)
            cat, num = block.discrete(cat, num, valid, bounds)
        trace = self._trace(cat, num)
        return self.classify(trace, valid), trace

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

    def classify(self, trace: dict[str, torch.Tensor], valid: torch.Tensor) -> torch.Tensor:
        """Classifier of docs/semantics.md: float64 scores summed in variable order -> label ids.

        Pooled, each variable adds the sum of its rows over the real positions, taken in position
        order, divided by their count; every position gets that one label.
        """
        weights_cat = self.classifier_cat.detach().double()  # (V, d, L)
        weights_num = self.classifier_num.detach().double()  # (N, L)
        batch, length = valid.shape
        pooled = self.config.pooled
        score = self.classifier_bias.detach().double().expand(batch, 1 if pooled else length, -1).clone()
        counts = valid.sum(1).double()[:, None, None]  # (B, 1, 1)
        counters = {"cat": 0, "num": 0}
        for name, kind in variable_layout(self.config):
            values = trace[name]  # (B, T)
            index = counters[kind]
            counters[kind] += 1
            if not bool((self.read_cat if kind == "cat" else self.read_num)[index]):
                continue
            if kind == "cat":
                rows = weights_cat[index][values]  # (B, T, L)
            else:
                rows = weights_num[index] * values[..., None].double()  # (B, T, L)
            if pooled:
                total = torch.zeros_like(score)  # (B, 1, L)
                for position in range(length):  # one addition at a time, in position order
                    total = total + torch.where(valid[:, position, None, None], rows[:, position : position + 1], 0.0)
                rows = total / counts  # (B, 1, L)
            score = score + rows  # (B, T or 1, L)
        labels = score[..., 1:].argmax(-1) + 1  # (B, T or 1): first maximal label, never <pad>
        return labels.expand(batch, length)  # (B, T)
