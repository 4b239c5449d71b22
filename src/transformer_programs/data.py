"""Seeded train / validation / test splits of unique task inputs, for any length ranges."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from .config import TrainConfig, task_spec
from .tasks.base import Example, TaskSpec, check_lengths
from .tasks.nlp import UNK, NlpTask, examples, load_raw, random_projection, word_vectors
from .vocab import BOS, EOS, Vocab

MIN_ROUND, MAX_ROUND = 1 << 10, 1 << 17  # examples sampled per round (bounds memory)
PATIENCE = 8  # rounds in a row that find no new input (each twice the last) before giving up
MAX_DRAWS_PER_EXAMPLE, MAX_DRAWS_BASE = 50, 1_000_000  # overall sampling budget per pool


@dataclass
class Split:
    """Parallel lists of input token sequences and their label sequences."""

    inputs: list[list[str]]
    labels: list[list[str]]


@dataclass
class Splits:
    """Train, validation and test splits (no input in two) and notes on how they were made."""

    train: Split
    val: Split
    test: Split
    notes: list[str]


def _check_args(
    n_examples: int,
    vocab_size: int,
    fractions: tuple[float, float, float],
    lengths: dict[str, tuple[int, int]],
) -> None:
    if n_examples < 3:
        raise ValueError(f"n_examples must be at least 3 (one per split), got {n_examples}")
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be at least 1, got {vocab_size}")
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    for what, (low, high) in lengths.items():
        check_lengths(low, high, what)


def _sizes(total: int, fractions: tuple[float, ...]) -> list[int]:
    """Split `total` by `fractions` (largest remainders), giving every part at least one."""
    weights = [f / sum(fractions) for f in fractions]
    raw = [total * w for w in weights]
    sizes = [int(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - sizes[i], reverse=True)
    for i in by_remainder[: total - sum(sizes)]:
        sizes[i] += 1
    for i, size in enumerate(sizes):
        if size == 0:
            sizes[int(np.argmax(sizes))] -= 1
            sizes[i] = 1
    return sizes


def train_split_size(n_examples: int, available: int | None,
                     fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> int:
    """How many examples make_splits puts in the training split when the test split has lengths
    of its own and the training lengths hold `available` unique inputs (None: unlimited)."""
    n_train, n_val, _ = _sizes(n_examples, fractions)
    if available is None or available >= n_train + n_val:
        return n_train
    return _sizes(available, fractions[:2])[0]


def _draw_unique(
    task: TaskSpec,
    rng: np.random.Generator,
    n: int,
    lengths: tuple[int, int],
    vocab_size: int,
    exclude: set[tuple[str, ...]],
    notes: list[str],
) -> list[Example]:
    """Up to `n` examples with distinct inputs not in `exclude`, in random order.

    Stops early, with a note, when fewer inputs exist (`task.count_inputs`) or when sampling
    stops finding new ones (PATIENCE doubling rounds without one, or the draw budget spent).
    """
    low, high = lengths
    count = task.count_inputs(low, high, vocab_size)
    target = n if count is None else min(n, count)
    budget = MAX_DRAWS_PER_EXAMPLE * target + MAX_DRAWS_BASE
    found: dict[tuple[str, ...], Example] = {}
    draws = stalls = 0
    while len(found) < target and stalls < PATIENCE and draws < budget:
        size = max(2 * (target - len(found)), MIN_ROUND) << stalls
        size = min(size, MAX_ROUND, budget - draws)
        draws += size
        before = len(found)
        for inputs, labels in task.sample(rng, size, low, high, vocab_size):
            key = tuple(inputs)
            if key not in found and key not in exclude:
                found[key] = (inputs, labels)
                if len(found) == target:
                    break
        stalls = 0 if len(found) > before else stalls + 1
    where = f"{task.name} inputs with lengths {low}..{high} and vocab_size {vocab_size}"
    if count is not None and count < n:
        got = "" if len(found) == count else f"; sampling found {len(found)} of them"
        notes.append(f"only {count} unique {where} exist{got}; using all of them (asked for {n})")
    elif len(found) < n:
        notes.append(
            f"sampling found only {len(found)} unique {where} after {draws} draws "
            f"(asked for {n}); using all of them"
        )
    examples = list(found.values())
    return [examples[i] for i in rng.permutation(len(examples))]


def _to_split(examples: list[Example]) -> Split:
    return Split(inputs=[x for x, _ in examples], labels=[y for _, y in examples])


def _partition(
    examples: list[Example], sizes: list[int], fractions: tuple[float, ...], what: str
) -> list[list[Example]]:
    """Cut `examples` into parts of `sizes`, or by `fractions` when there are fewer of them."""
    if len(examples) < len(sizes):
        raise ValueError(
            f"only {len(examples)} unique inputs for {what}; need at least {len(sizes)}"
        )
    if len(examples) < sum(sizes):
        sizes = _sizes(len(examples), fractions)
    out, start = [], 0
    for size in sizes:
        out.append(examples[start : start + size])
        start += size
    return out


def make_splits(
    task: TaskSpec,
    n_examples: int = 20000,
    seed: int = 0,
    vocab_size: int | None = None,
    train_lengths: tuple[int, int] | None = None,
    test_lengths: tuple[int, int] | None = None,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> Splits:
    """Train / validation / test splits of `n_examples` examples with unique inputs.

    Without `test_lengths`, one pool drawn from `train_lengths` (default: the task's range) is
    split by `fractions`. With `test_lengths`, train and validation come from `train_lengths`
    and the test split (its share of `n_examples`) is drawn separately from `test_lengths`.
    Lengths count content tokens (digits per operand for addition); Dyck strings take the
    upper end of a range. When fewer unique inputs exist than asked for, all of them are used,
    split by the same fractions, and `notes` says so. Deterministic for a given `seed`.
    """
    vocab_size = task.vocab_size if vocab_size is None else vocab_size
    train_range = train_lengths or (task.min_len, task.max_len)
    ranges = {"train_lengths": train_range}
    if test_lengths is not None:
        ranges["test_lengths"] = test_lengths
    _check_args(n_examples, vocab_size, fractions, ranges)
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    n_train, n_val, n_test = _sizes(n_examples, fractions)
    if test_lengths is None:
        pool = _draw_unique(task, rng, n_examples, train_range, vocab_size, set(), notes)
        train, val, test = _partition(pool, [n_train, n_val, n_test], fractions, task.name)
    else:
        pool = _draw_unique(task, rng, n_train + n_val, train_range, vocab_size, set(), notes)
        train, val = _partition(
            pool, [n_train, n_val], fractions[:2], f"{task.name} train and validation"
        )
        seen = {tuple(x) for x, _ in pool}
        test = _draw_unique(task, rng, n_test, test_lengths, vocab_size, seen, notes)
        if not test:
            raise ValueError(f"no unique {task.name} test inputs with lengths {test_lengths}")
    return Splits(train=_to_split(train), val=_to_split(val), test=_to_split(test), notes=notes)


@dataclass
class Dataset:
    """Splits as strings and as padded id tensors, with their vocabularies."""

    splits: Splits
    input_vocab: Vocab
    label_vocab: Vocab
    max_len: int  # longest sequence of any split: the model's position range
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]  # split -> (inputs, labels), (N, max_len)
    vectors: np.ndarray | None = None  # word tasks: a vector per input token to start the embeddings from
    tagging: bool = False  # the labels are IOB2 entity tags (scored by entity F1 too)


def build_dataset(config: TrainConfig) -> Dataset:
    """Generate the run's data (deterministic from its seed), or read a word task's, and encode it."""
    spec = task_spec(config)
    if isinstance(spec, NlpTask):
        return _word_dataset(config, spec)
    splits = make_splits(
        spec,
        n_examples=config.n_examples,
        seed=config.seed,
        vocab_size=config.vocab_size,
        train_lengths=config.train_lengths,
        test_lengths=config.test_lengths,
    )
    longest_content = max(config.train_lengths[1], (config.test_lengths or (0, 0))[1])
    input_vocab = Vocab.build(spec.input_tokens(config.vocab_size, longest_content))
    label_vocab = Vocab.build(spec.label_tokens(config.vocab_size, longest_content))
    return _encoded(config, splits, input_vocab, label_vocab)


def _encoded(config: TrainConfig, splits: Splits, input_vocab: Vocab, label_vocab: Vocab,
             vectors: np.ndarray | None = None) -> Dataset:
    """The splits as padded id tensors of the run's position range."""
    named = {"train": splits.train, "val": splits.val, "test": splits.test}
    longest = max(len(seq) for split in named.values() for seq in split.inputs)
    if config.max_len is not None and config.max_len < longest:
        raise ValueError(
            f"--max-len {config.max_len} is shorter than the longest sequence ({longest} tokens); "
            f"use at least {longest}"
        )
    max_len = config.max_len or longest
    tensors = {
        name: (input_vocab.encode(split.inputs, max_len), label_vocab.encode(split.labels, max_len))
        for name, split in named.items()
    }
    return Dataset(splits, input_vocab, label_vocab, max_len, tensors, vectors)


def _word_dataset(config: TrainConfig, task: NlpTask) -> Dataset:
    """A word task's splits from its data (see tasks.nlp), its `vocab_size` most frequent training
    words (the rest read as <unk>), and vectors for them projected to the embeddings' width."""
    raw, source = load_raw(task, config.data_dir)
    notes = [f"{task.name} read from {source}"]
    split = {}
    for name in ("train", "val", "test"):
        inputs, labels, left_out = examples(task, raw[name], tuple(config.train_lengths), name)
        if not inputs:
            raise ValueError(f"{task.name}: the {name} split has no text of {config.train_lengths} words")
        if left_out:
            notes.append(f"{left_out} of {len(raw[name])} {name} texts have a word count outside "
                         f"{config.train_lengths[0]}..{config.train_lengths[1]} and are left out, as in the paper's code")
        split[name] = Split(inputs, labels)
    if len(split["train"].inputs) > config.n_examples:
        notes.append(f"training on the first {config.n_examples} of {len(split['train'].inputs)} training texts")
        split["train"] = Split(split["train"].inputs[: config.n_examples], split["train"].labels[: config.n_examples])
    counts = Counter(word for sequence in split["train"].inputs for word in sequence[1:-1])
    words = [word for word, _ in counts.most_common(config.vocab_size)]
    input_vocab = Vocab.build([BOS, EOS, UNK, *words])
    known = set(input_vocab.tokens)
    for part in split.values():
        part.inputs = [[token if token in known else UNK for token in sequence] for sequence in part.inputs]
    labels = sorted(task.labels)  # from the task's definition, never from the data
    vectors, note = word_vectors(list(input_vocab.tokens), config.embeddings, seed=config.seed)
    notes.append(note)
    if vectors is not None:
        model = task.model
        vectors = random_projection(vectors, max(config.n_embed_vars, 1) * (model.d_values or 1), seed=config.seed)
    splits = Splits(split["train"], split["val"], split["test"], notes)
    data = _encoded(config, splits, input_vocab, Vocab.build(labels), vectors)
    data.tagging = task.tagging
    return data
