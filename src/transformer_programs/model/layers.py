"""The components of a Transformer Program, each with a relaxed (training) and a discrete path.

Every discrete choice (which variable a head reads, which key value a query value matches,
which key a query attends to, which value an embedding or MLP outputs) is a row of logits. In
training it is a Gumbel-softmax sample at temperature `tau`; in discrete mode it is the argmax.
Sampling the attention and the MLP outputs too (per position) matters: with plain softmaxes the
relaxed model learns exact soft averages (token histograms, say) that argmax destroys, and its
discretized accuracy lags far behind its loss. The discrete paths work
on integer value ids and implement `docs/semantics.md` exactly; the relaxed paths work on
one-hot (or soft one-hot) vectors over the shared value space of size `d`.

Shapes: B batch, T positions, V variables, H heads, M MLPs, d values, L labels, h hidden.
In the relaxed path the categorical residual stream is a list of chunks, each (V_c, B, T, d),
variables first: selecting variables is then one matrix product whose result is already laid
out head by head, with no transposes (memory traffic, not arithmetic, bounds speed on a CPU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


MATCH_FLOOR = 1e-6  # log(score + MATCH_FLOOR): a certain non-match sits 13.8 below a certain match


def softmax_last(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis, computed on a transposed view.

    torch 2.13's CPU kernel is several times slower over a short last axis (our d <= ~50)
    than over a middle one; the result is the same.
    """
    return torch.softmax(x.transpose(-1, -2), dim=-2).transpose(-1, -2)


def relaxed_one_hot(logits: torch.Tensor, tau: float, generator: torch.Generator | None) -> torch.Tensor:
    """Gumbel-softmax over the last axis; without a generator, plain softmax(logits / tau)."""
    if generator is not None:
        uniform = torch.rand(logits.shape, generator=generator).clamp_(1e-10, 1.0)  # same shape as logits
        logits = logits - torch.log(-torch.log(uniform))
    return softmax_last(logits / tau)


def tie_break_rank(length: int) -> torch.Tensor:
    """rank(i, j) = 2|i - j| - [j < i]: the nearest key first, the earlier one at equal distance.

    The one tie-break rule of the project (docs/semantics.md); the relaxed path and the discrete
    path both derive from this table.
    """
    pos = torch.arange(length)
    distance = (pos[:, None] - pos[None, :]).abs()  # (query, key)
    return 2 * distance - (pos[None, :] < pos[:, None]).long()  # (query, key)


def key_mask(valid: torch.Tensor, causal: bool) -> torch.Tensor:
    """Which keys a query may see: non-pad keys, and only earlier ones when causal."""
    length = valid.shape[1]
    mask = valid[:, None, :].expand(-1, length, -1)  # (B, query, key)
    if causal:
        mask = mask & torch.ones(length, length, dtype=torch.bool).tril()  # (B, query, key)
    return mask


class VariableSelector(nn.Module):
    """For each of `n` heads (or MLPs), a choice of one of `n_vars` variables."""

    def __init__(self, n: int, n_vars: int):
        super().__init__()
        self.logits = nn.Parameter(torch.randn(n, n_vars))  # (n, V)

    def weights(self, tau: float, generator: torch.Generator | None) -> torch.Tensor:
        return relaxed_one_hot(self.logits, tau, generator)  # (n, V)

    def choice(self) -> torch.Tensor:
        return self.logits.argmax(-1)  # (n,)


class Predicate(nn.Module):
    """For each head, a map from query value to the one key value it matches."""

    def __init__(self, n_heads: int, d: int):
        super().__init__()
        self.logits = nn.Parameter(torch.randn(n_heads, d, d))  # (H, query value, key value)

    def relaxed(self, tau: float, generator: torch.Generator | None) -> torch.Tensor:
        return relaxed_one_hot(self.logits, tau, generator)  # (H, d, d)

    def table(self) -> torch.Tensor:
        return self.logits.argmax(-1)  # (H, d): key value matched by each query value


def relaxed_match(query: torch.Tensor, key: torch.Tensor, predicate: torch.Tensor) -> torch.Tensor:
    """Soft predicate value for every (query, key) pair: query^T P key, in [0, 1]."""
    heads, batch, length, d = query.shape
    mapped = torch.bmm(query.reshape(heads, batch * length, d), predicate)  # (H, B*T, d)
    return mapped.view(heads, batch, length, d) @ key.transpose(-1, -2)  # (H, B, query, key)


def discrete_match(query: torch.Tensor, key: torch.Tensor, table: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Boolean predicate for every (query, key) pair, restricted to visible keys."""
    heads = torch.arange(table.shape[0])[None, :, None]  # (1, H, 1)
    target = table[heads, query]  # (B, H, query): the key value each query looks for
    return (target[..., :, None] == key[..., None, :]) & mask[:, None]  # (B, H, query, key)


def mix(chunks: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """Relaxed variable selection: chunks of (V_c, B, T, d) soft one-hots, weights (S, V) -> (S, B, T, d)."""
    stream = torch.cat(chunks) if len(chunks) > 1 else chunks[0]  # (V, B, T, d)
    return (weights @ stream.flatten(1)).view(-1, *stream.shape[1:])  # (S, B, T, d): one GEMM


def gather_vars(values: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
    """Discrete values of the chosen variables: (B, T, V) ids -> (B, n, T), contiguous.

    Contiguous because reductions over the last axis of the strided transpose run >20x slower.
    """
    return values[:, :, choice].transpose(1, 2).contiguous()  # (B, n, T)


class CategoricalAttention(nn.Module):
    """Heads that copy a categorical value from the closest key matching their predicate."""

    def __init__(self, n_heads: int, n_vars: int, d: int, causal: bool, max_len: int, soft: bool):
        super().__init__()
        self.causal = causal
        self.soft = soft  # relaxed logits: log(match) (the paper's, there / sqrt(d)) or scaled match (sharp)
        self.max_len = max_len  # scales the tie-break rank, so padding never changes attention
        self.query = VariableSelector(n_heads, n_vars)
        self.key = VariableSelector(n_heads, n_vars)
        self.value = VariableSelector(n_heads, n_vars)
        self.predicate = Predicate(n_heads, d)

    def relaxed(self, q, k, v, valid: torch.Tensor, tau: float, gen: torch.Generator | None) -> torch.Tensor:
        """Relaxed path: selected q, k, v (H, B, T, d) soft one-hots -> (H, B, T, d)."""
        mask = key_mask(valid, self.causal)  # (B, query, key)
        score = relaxed_match(q, k, self.predicate.relaxed(tau, gen)) * mask  # (H, B, query, key)
        # BOS is the fallback: its score rises to 1 as the best match of the query falls to 0.
        # Dropout scales kept values by 1 / (1 - p), so a match can score above 1; the fallback
        # is then 0, never negative (soft attention takes its log).
        no_match = (1 - score.amax(-1, keepdim=True)).clamp(min=0)  # (H, B, query, 1)
        bos = score[..., :1] + no_match * (1 - score[..., :1])  # (H, B, query, 1): >= 0
        score = torch.cat([bos, score[..., 1:]], dim=-1)  # (H, B, query, key)
        # Either way a match outweighs any rank and among matches the nearest wins
        # (docs/semantics.md); the two differ in how hard attention is at high temperature.
        length = q.shape[2]
        rank = tie_break_rank(length).to(q.dtype)  # (query, key)
        if self.soft:
            # As in the paper's code, log-match logits: while the temperature is high a query
            # averages over every likely match. The scaled rank, below 1, only orders matches.
            # Unlike it, not divided by sqrt(d): as tau falls a Gumbel sample is a draw from
            # softmax(logits), where a non-match divided by sqrt(16) kept weight 1e-6 ** (1/4),
            # about 0.03 of a match's, and a trained dyck2 model read non-matching keys in
            # 13-18% of its samples; the paper's 1e-20 floor overflows our gradients.
            logits = torch.log(score + MATCH_FLOOR) - rank / (2 * self.max_len + 2)  # (H, B, query, key)
        else:
            # Sharp: a match is worth more than any rank, so from the start a query reads
            # (a sample near) its nearest match.
            logits = (2 * self.max_len + 2) * score - rank  # (H, B, query, key)
        logits = logits.masked_fill(~mask, float("-inf"))
        return relaxed_one_hot(logits, tau, gen) @ v  # (H, B, T, d): a Gumbel sample over keys, per query

    def discrete(self, cat: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Discrete path: cat (B, T, V) value ids -> (B, T, H) value ids."""
        q = gather_vars(cat, self.query.choice())  # (B, H, T)
        k = gather_vars(cat, self.key.choice())  # (B, H, T)
        v = gather_vars(cat, self.value.choice())  # (B, H, T)
        match = discrete_match(q, k, self.predicate.table(), key_mask(valid, self.causal))  # (B, H, q, k)
        length = cat.shape[1]
        preference = 2 * length - tie_break_rank(length)  # (query, key): larger is preferred, > 0
        best = torch.where(match, preference, 0).argmax(-1)  # (B, H, query); 0 (BOS) when none match
        return torch.gather(v, 2, best).transpose(1, 2)  # (B, T, H)


class NumericalAttention(nn.Module):
    """Heads that sum a numerical value over every key matching their predicate."""

    def __init__(self, n_heads: int, n_cat_vars: int, n_num_vars: int, d: int, causal: bool):
        super().__init__()
        self.causal = causal
        self.query = VariableSelector(n_heads, n_cat_vars)
        self.key = VariableSelector(n_heads, n_cat_vars)
        self.value = VariableSelector(n_heads, n_num_vars)
        self.predicate = Predicate(n_heads, d)

    def relaxed(self, q, k, v, valid: torch.Tensor, tau: float, gen: torch.Generator | None) -> torch.Tensor:
        """Relaxed path: selected q, k (H, B, T, d) soft one-hots and values v (H, B, T) -> (H, B, T)."""
        score = relaxed_match(q, k, self.predicate.relaxed(tau, gen))  # (H, B, query, key)
        score = score * key_mask(valid, self.causal)  # (H, B, query, key)
        return (score @ v[..., None]).squeeze(-1)  # (H, B, T)

    def discrete(self, cat: torch.Tensor, num: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Discrete path: cat (B, T, V) ids, num (B, T, N) int64 -> (B, T, H) int64."""
        q = gather_vars(cat, self.query.choice())  # (B, H, T)
        k = gather_vars(cat, self.key.choice())  # (B, H, T)
        v = gather_vars(num, self.value.choice())  # (B, H, T)
        match = discrete_match(q, k, self.predicate.table(), key_mask(valid, self.causal))  # (B, H, q, k)
        return (match.long() * v[:, :, None, :]).sum(-1).transpose(1, 2)  # (B, T, H)


class CategoricalMLP(nn.Module):
    """MLPs that read two categorical variables and write one: a learned lookup table."""

    def __init__(self, n_mlps: int, n_vars: int, d: int, hidden: int):
        super().__init__()
        self.first = VariableSelector(n_mlps, n_vars)
        self.second = VariableSelector(n_mlps, n_vars)
        self.w_first = nn.Parameter(torch.randn(n_mlps, d, hidden) / d**0.5)  # (M, d, h)
        self.w_second = nn.Parameter(torch.randn(n_mlps, d, hidden) / d**0.5)  # (M, d, h)
        self.b_hidden = nn.Parameter(torch.zeros(n_mlps, hidden))  # (M, h)
        self.w_out = nn.Parameter(torch.randn(n_mlps, hidden, d) / hidden**0.5)  # (M, h, d)
        self.b_out = nn.Parameter(torch.zeros(n_mlps, d))  # (M, d)

    def relaxed(self, a: torch.Tensor, b: torch.Tensor, tau: float, gen: torch.Generator | None) -> torch.Tensor:
        """Relaxed path: selected inputs a, b (M, n, d) soft one-hots -> (M, n, d) soft one-hots."""
        hidden = torch.baddbmm(self.b_hidden[:, None, :], a, self.w_first)  # (M, n, h)
        hidden = F.relu(torch.baddbmm(hidden, b, self.w_second))  # (M, n, h)
        logits = torch.baddbmm(self.b_out[:, None, :], hidden, self.w_out)  # (M, n, d)
        return relaxed_one_hot(logits, tau, gen)  # (M, n, d)

    def table(self) -> torch.Tensor:
        """The MLP on every pair of input values: (M, d, d) output ids."""
        hidden = self.w_first[:, :, None, :] + self.w_second[:, None, :, :] + self.b_hidden[:, None, None, :]
        hidden = F.relu(hidden)  # (M, a, b, h)
        logits = torch.einsum("mabh,mhd->mabd", hidden, self.w_out) + self.b_out[:, None, None, :]  # (M, a, b, d)
        return logits.argmax(-1)  # (M, a, b)

    def discrete(self, cat: torch.Tensor) -> torch.Tensor:
        """Discrete path, by table lookup: cat (B, T, V) ids -> (B, T, M) ids."""
        a = gather_vars(cat, self.first.choice())  # (B, M, T)
        b = gather_vars(cat, self.second.choice())  # (B, M, T)
        mlps = torch.arange(a.shape[1])[None, :, None]  # (1, M, 1)
        return self.table()[mlps, a, b].transpose(1, 2)  # (B, T, M)


class NumericalMLP(nn.Module):
    """MLPs that read one numerical variable (a count) and write a categorical one.

    A learned row of output logits per integer count 0..max_count, read in training by linear
    interpolation between the two neighbouring rows (counts are soft sums there). Each count
    trains its own row. An MLP of the count (the paper's choice) shares breakpoints between all
    counts: on double_hist one step that moved them lost a 96-98% solution late in training for
    good, while these rows reached 98-99.6% with no collapse (README, Results). Counts never
    seen in training keep their random rows.
    """

    def __init__(self, n_mlps: int, n_num_vars: int, d: int, max_count: int):
        super().__init__()
        self.max_count = max_count  # larger counts read the last row
        self.source = VariableSelector(n_mlps, n_num_vars)
        self.count_rows = nn.Parameter(torch.randn(n_mlps, max_count + 1, d))  # (M, counts, d)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Output logits for counts x (M, n), integer or soft -> (M, n, d)."""
        x = x.clamp(0, self.max_count)  # (M, n)
        low = x.detach().floor().long().clamp(0, self.max_count - 1)  # (M, n): left row; NaN reads row 0
        right = (x - low)[..., None]  # (M, n, 1): weight of row low + 1; 0 at integers but the last
        offset = torch.arange(x.shape[0])[:, None] * (self.max_count + 1)  # (M, 1): each MLP's first row
        rows = self.count_rows.flatten(0, 1)  # (M * counts, d); F.embedding's backward is a fast scatter
        return torch.lerp(F.embedding(low + offset, rows), F.embedding(low + 1 + offset, rows), right)  # (M, n, d)

    def relaxed(self, x: torch.Tensor, tau: float, gen: torch.Generator | None) -> torch.Tensor:
        """Relaxed path: selected inputs x (M, n) -> (M, n, d) soft one-hots."""
        return relaxed_one_hot(self.logits(x), tau, gen)  # (M, n, d)

    def table(self, bounds: list[int]) -> list[torch.Tensor]:
        """Per MLP, its output id for every input 0..min(bound, max_count), bound being the
        largest reachable input: larger counts read the last row, so they give the last entry."""
        x = torch.arange(min(max(bounds), self.max_count) + 1, dtype=self.count_rows.dtype)  # (X,)
        outputs = self.logits(x.expand(len(bounds), -1)).argmax(-1)  # (M, X)
        return [outputs[m, : min(bound, self.max_count) + 1] for m, bound in enumerate(bounds)]  # M x (X_m,)

    def discrete(self, num: torch.Tensor, bounds: list[int]) -> torch.Tensor:
        """Discrete path, by table lookup: num (B, T, N) int64 -> (B, T, M) ids."""
        x = gather_vars(num, self.source.choice())  # (B, M, T)
        tables = self.table(bounds)
        outputs = [table[x[:, m].clamp(max=len(table) - 1)] for m, table in enumerate(tables)]  # M x (B, T)
        return torch.stack(outputs, dim=-1)  # (B, T, M)


class LearnedEmbedding(nn.Module):
    """Categorical variables whose value for each token is learned (a token -> value table)."""

    def __init__(self, n_vars: int, n_tokens: int, d: int):
        super().__init__()
        self.logits = nn.Parameter(torch.randn(n_vars, n_tokens, d))  # (E, tokens, d)

    def forward(self, tokens: torch.Tensor, tau: float, gen: torch.Generator | None) -> torch.Tensor:
        """Relaxed path: tokens (B, T) -> (E, B, T, d): one sample per token of the vocabulary that
        the batch holds (with a word vocabulary, sampling every row would cost more than the model)."""
        present, where = tokens.unique(return_inverse=True)  # (U,), (B, T)
        return relaxed_one_hot(self.logits[:, present], tau, gen)[:, where]  # (E, B, T, d)

    @torch.no_grad()
    def initialise(self, vectors: torch.Tensor) -> None:
        """Start each token's value logits from its vector (tokens, E * w): variable e reads the
        e-th slice of w numbers, for its first w values (word tasks: projected GloVe vectors)."""
        variables, tokens, _ = self.logits.shape
        width = vectors.shape[1] // variables
        self.logits[:, :, :width] = vectors.view(tokens, variables, width).transpose(0, 1)

    def table(self) -> torch.Tensor:
        return self.logits.argmax(-1)  # (E, tokens)

    def discrete(self, tokens: torch.Tensor) -> torch.Tensor:
        """Discrete path: tokens (B, T) -> (B, T, E) ids."""
        return self.table()[:, tokens].permute(1, 2, 0)  # (B, T, E)
