"""Task specifications (`TaskSpec`, `ModelDefaults`) and helpers shared by the task generators."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..vocab import BOS, EOS, PAD

Example = tuple[list[str], list[str]]
"""One example: input tokens (starting with "<s>") and labels of the same length."""

Sampler = Callable[[np.random.Generator, int, int, int, int], list[Example]]
BatchMaker = Callable[[np.random.Generator, int, int], list[Example]]


@dataclass(frozen=True)
class ModelDefaults:
    """The paper's best configuration for a task (counts are per layer); None: the model's default."""

    layers: int
    heads_cat: int
    heads_num: int
    mlps_cat: int
    mlps_num: int
    attention: str = "sharp"  # relaxed attention, "sharp" or "soft" (model.program_config.ProgramConfig)
    n_embed_vars: int = 0  # learned categorical embeddings of the tokens
    d_values: int | None = None  # categorical value space (default: the token and position count)
    tokens_variable: bool = True  # False: the tokens are read only through the embeddings (word tasks)
    dropout: float = 0.0  # on every layer output, in training
    pooled: bool = False  # one label per text: the classifier reads every variable's mean over positions
    epochs: int | None = None  # optimisation, for Transformer Programs
    tau_start: float | None = None  # initial Gumbel temperature (None: TAU_START, the paper's)
    tau_end: float | None = None  # final Gumbel temperature (None: TAU_END, the paper's)
    lr: float | None = None
    batch_size: int | None = None
    sparsity: float = 0.0  # L0 gates' loss weight: short programs by construction (model/gates.py)
    classifier_step: float = 0.0  # the classifier trained as multiples of this (model/points.py)
    target_parts: int = 0  # with gates: the open parts the penalty leaves alone (0: it counts every part)
    gated_epochs: int | None = None  # with gates, the budget in place of `epochs`: noisy gates need more steps
    gated_vocab_size: int | None = None  # word tasks with gates: the words kept, in place of the task's vocabulary
    gated_restarts: int = 1  # with gates: initializations tried, the best by validation kept (restarts.py)
    # `tprog train TASK`'s own model where it is not the paper's (size, attention, epochs: TrainConfig
    # fields), measured to give shorter programs; used only when neither the training (sparsity,
    # classifier step) nor the size is given, so the paper's training keeps the paper's model
    short_model: dict = field(default_factory=dict)


@dataclass(frozen=True)
class InputSpace:
    """Every input of a task, where it has this form: "<s>", then `min_len` to `max_len` of
    `symbols`, then "</s>" when `eos`. Small ones can be listed, so a program can be proved equal
    to its model on each of them."""

    symbols: tuple[str, ...]
    min_len: int
    max_len: int
    eos: bool

    def size(self) -> int:
        """How many inputs there are."""
        return sum(len(self.symbols) ** length for length in range(self.min_len, self.max_len + 1))

    def sequences(self) -> Iterator[list[str]]:
        """Every input once, shortest first."""
        tail = [EOS] if self.eos else []
        for length in range(self.min_len, self.max_len + 1):
            for content in itertools.product(self.symbols, repeat=length):
                yield [BOS, *content, *tail]

    def contains(self, tokens: Sequence[str]) -> bool:
        """Whether `tokens` is one of the inputs."""
        content = list(tokens[1 : len(tokens) - 1] if self.eos else tokens[1:])
        framed = tokens[:1] == [BOS] and (not self.eos or (len(tokens) > 1 and tokens[-1] == EOS))
        return framed and self.min_len <= len(content) <= self.max_len and set(content) <= set(self.symbols)

    def sample(self, n: int, seed: int = 0) -> list[list[str]]:
        """`n` inputs drawn uniformly from the space (each length as often as it has inputs)."""
        rng = np.random.default_rng(seed)
        lengths = np.arange(self.min_len, self.max_len + 1)
        counts = np.array([float(len(self.symbols)) ** length for length in lengths])
        chosen = rng.choice(lengths, size=n, p=counts / counts.sum())
        tail = [EOS] if self.eos else []
        return [[BOS, *rng.choice(self.symbols, size=length).tolist(), *tail] for length in chosen.tolist()]

    def describe(self) -> str:
        """The form in words, tokens quoted."""
        count = str(self.min_len) if self.min_len == self.max_len else f"{self.min_len} to {self.max_len}"
        words = f"{BOS!r}, then {count} of {' '.join(map(repr, self.symbols))}"
        return words + (f", then {EOS!r}" if self.eos else "")


def no_input_space(min_len: int, max_len: int, vocab_size: int) -> None:
    """For tasks whose inputs have no listable form."""
    return None


@dataclass(frozen=True)
class TaskSpec:
    """A synthetic task: its generator, vocabularies, defaults and size of its input space.

    `sample(rng, n, min_len, max_len, vocab_size)` returns `n` examples (duplicates possible),
    each `(inputs, labels)` of equal length, inputs starting with "<s>" and labels "<pad>" where
    a position is not scored. Lengths count content tokens (no BOS/EOS); for the addition tasks
    they are digits per operand.
    """

    name: str
    description: str
    causal: bool
    vocab_size: int
    min_len: int
    max_len: int
    model: ModelDefaults
    sample: Sampler
    input_tokens: Callable[[int, int], list[str]]
    label_tokens: Callable[[int, int], list[str]]
    seq_len: Callable[[int], int]
    count_inputs: Callable[[int, int, int], int | None]
    # (min_len, max_len, vocab_size) -> the task's every input, where they have InputSpace's form
    input_space: Callable[[int, int, int], InputSpace | None] = field(default=no_input_space)


def check_lengths(min_len: int, max_len: int, what: str = "lengths") -> None:
    """Raise ValueError unless `1 <= min_len <= max_len`."""
    if min_len < 1 or min_len > max_len:
        raise ValueError(f"{what} must satisfy 1 <= min <= max, got ({min_len}, {max_len})")


def check_vocab(task: str, vocab_size: int, low: int, high: int | None = None) -> None:
    """Raise ValueError unless `low <= vocab_size <= high` (no upper bound when `high` is None)."""
    if vocab_size < low or (high is not None and vocab_size > high):
        if high is None:
            allowed = f"at least {low}"
        else:
            allowed = str(low) if low == high else f"{low}..{high}"
        raise ValueError(f"{task}: vocab_size must be {allowed}, got {vocab_size}")


def seq_len_affine(scale: int, extra: int, max_len: int) -> int:
    """`scale * max_len + extra`: the longest full sequence for content length `max_len`."""
    return scale * max_len + extra


def digit_symbols(vocab_size: int) -> list[str]:
    """The content symbols "0", "1", ..., str(vocab_size - 1)."""
    return [str(i) for i in range(vocab_size)]


def lookup(tokens: Sequence[str]) -> np.ndarray:
    """`tokens` as an object array: indexing it with ids gives token matrices that share the
    string objects (and `tolist` on them is fast)."""
    return np.array(list(tokens), dtype=object)


def frame(content: np.ndarray, labels: np.ndarray, eos: bool = False) -> list[Example]:
    """Examples from (m, l) object arrays of content tokens and their labels: "<s>" in front
    (and "</s>" at the end when `eos`), labelled "<pad>"."""

    def column(token: str) -> np.ndarray:
        return np.full((content.shape[0], 1), token, dtype=object)

    tail_in, tail_out = ([column(EOS)], [column(PAD)]) if eos else ([], [])
    inputs = np.concatenate([column(BOS), content, *tail_in], axis=1).tolist()
    outputs = np.concatenate([column(PAD), labels, *tail_out], axis=1).tolist()
    return list(zip(inputs, outputs))


def sample_by_length(
    rng: np.random.Generator, n: int, min_len: int, max_len: int, make_batch: BatchMaker
) -> list[Example]:
    """`n` examples with lengths uniform in `min_len..max_len`, in random order.

    `make_batch(rng, m, length)` makes `m` examples of one length, so label computation can be
    vectorized per length.
    """
    lengths = rng.integers(min_len, max_len + 1, size=n)
    out: list[Example] = [([], [])] * n
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        for row, example in zip(rows, make_batch(rng, len(rows), int(length))):
            out[row] = example
    return out


def row_counts(x: np.ndarray, n_values: int) -> np.ndarray:
    """counts[i, v] = number of entries of row i of `x` equal to v; x is (m, l) in 0..n_values-1."""
    m = x.shape[0]
    offsets = (np.arange(m) * n_values)[:, None]
    return np.bincount((x + offsets).ravel(), minlength=m * n_values).reshape(m, n_values)
