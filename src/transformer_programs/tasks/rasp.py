"""The paper's RASP tasks (reverse, hist, double_hist, sort, most_freq, dyck1, dyck2) and harder
Dyck variants (dyck1_walks, dyck2_walks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

import numpy as np

from ..vocab import BOS, EOS
from .base import (
    Example,
    InputSpace,
    ModelDefaults,
    TaskSpec,
    check_lengths,
    check_vocab,
    digit_symbols,
    frame,
    lookup,
    row_counts,
    sample_by_length,
    seq_len_affine,
)

LabelFn = Callable[[np.ndarray, int], np.ndarray]
"""(content symbol ids (m, l), vocab_size) -> labels (m, l) as an object array of strings."""


def _numbers(upto: int) -> np.ndarray:
    """The strings "0".."upto" as a lookup table."""
    return lookup([str(i) for i in range(upto + 1)])


def reverse_labels(x: np.ndarray, vocab_size: int) -> np.ndarray:
    """Position i gets the i-th symbol from the end."""
    return lookup(digit_symbols(vocab_size))[x[:, ::-1]]


def hist_labels(x: np.ndarray, vocab_size: int) -> np.ndarray:
    """Position i gets how often its symbol occurs in the sequence."""
    hist = np.take_along_axis(row_counts(x, vocab_size), x, axis=1)
    return _numbers(x.shape[1])[hist]


def double_hist_labels(x: np.ndarray, vocab_size: int) -> np.ndarray:
    """Position i gets how many distinct symbols occur exactly as often as its symbol does."""
    length = x.shape[1]
    counts = row_counts(x, vocab_size)  # (m, vocab)
    hist = np.take_along_axis(counts, x, axis=1)  # (m, l), values 1..l
    same_count = row_counts(counts, length + 1)  # (m, l + 1): symbols per count value
    return _numbers(length)[np.take_along_axis(same_count, hist, axis=1)]


def sort_labels(x: np.ndarray, vocab_size: int) -> np.ndarray:
    """Position k gets the k-th smallest symbol (by symbol value, so "10" sorts after "9")."""
    return lookup(digit_symbols(vocab_size))[np.sort(x, axis=1)]


def most_freq_labels(x: np.ndarray, vocab_size: int) -> np.ndarray:
    """Position k gets the k-th most frequent distinct symbol, ties broken by first occurrence.

    Positions at or past the number of distinct symbols get "<s>" and are scored, as in the
    paper's code: the model must also tell how many distinct symbols there are.
    """
    m, length = x.shape
    rows = np.arange(m)
    counts = row_counts(x, vocab_size)  # (m, vocab)
    first = np.full((m, vocab_size), length)
    for pos in range(length - 1, -1, -1):
        first[rows, x[:, pos]] = pos
    # Present symbols score >= length + 1 and all differ; absent symbols score 0.
    score = counts * (length + 1) + (length - first)
    order = np.argsort(-score, axis=1, kind="stable")[:, :length]
    if order.shape[1] < length:  # fewer symbols than positions
        order = np.pad(order, ((0, 0), (0, length - order.shape[1])))
    distinct = (counts > 0).sum(axis=1)
    order = np.where(np.arange(length)[None, :] < distinct[:, None], order, vocab_size)
    return lookup(digit_symbols(vocab_size) + [BOS])[order]


def _sample_content(
    name: str,
    label_fn: LabelFn,
    eos: bool,
    rng: np.random.Generator,
    n: int,
    min_len: int,
    max_len: int,
    vocab_size: int,
) -> list[Example]:
    """Uniform lengths, uniform symbols "0".."vocab_size-1"; labels from `label_fn`."""
    check_lengths(min_len, max_len)
    check_vocab(name, vocab_size, 1)
    symbols = lookup(digit_symbols(vocab_size))

    def batch(rng: np.random.Generator, m: int, length: int) -> list[Example]:
        x = rng.integers(0, vocab_size, size=(m, length))
        return frame(symbols[x], label_fn(x, vocab_size), eos)

    return sample_by_length(rng, n, min_len, max_len, batch)


def _content_inputs(eos: bool, vocab_size: int, max_len: int) -> list[str]:
    return [BOS, *digit_symbols(vocab_size), *([EOS] if eos else [])]


def _symbol_labels(vocab_size: int, max_len: int) -> list[str]:
    return digit_symbols(vocab_size)


def _most_freq_labels(vocab_size: int, max_len: int) -> list[str]:
    return [*digit_symbols(vocab_size), BOS]


def _hist_label_tokens(vocab_size: int, max_len: int) -> list[str]:
    return [str(i) for i in range(1, max_len + 1)]


def _double_hist_label_tokens(vocab_size: int, max_len: int) -> list[str]:
    return [str(i) for i in range(1, min(vocab_size, max_len) + 1)]


def _count_content(min_len: int, max_len: int, vocab_size: int) -> int:
    return sum(vocab_size**length for length in range(min_len, max_len + 1))


def _content_space(eos: bool, min_len: int, max_len: int, vocab_size: int) -> InputSpace:
    return InputSpace(tuple(digit_symbols(vocab_size)), min_len, max_len, eos)


def _content_task(
    name: str,
    description: str,
    label_fn: LabelFn,
    label_tokens: Callable[[int, int], list[str]],
    eos: bool,
    model: ModelDefaults,
) -> TaskSpec:
    """A task over random symbol strings, sized as the paper's "vocabulary 8, length 8".

    The paper's code counts <pad>, <s> and </s> in the 8 tokens and <s>, </s> in the 8
    positions: 8 - 3 = 5 symbols and lengths up to 6 with </s>, 6 symbols and up to 7 without.
    """
    specials = 3 if eos else 2
    return TaskSpec(
        name=name,
        description=description,
        causal=False,
        vocab_size=8 - specials,
        min_len=1,
        max_len=8 - (specials - 1),
        model=model,
        sample=partial(_sample_content, name, label_fn, eos),
        input_tokens=partial(_content_inputs, eos),
        label_tokens=label_tokens,
        seq_len=partial(seq_len_affine, 1, 2 if eos else 1),
        count_inputs=_count_content,
        input_space=partial(_content_space, eos),
    )


# Epoch budgets: the fewest epochs tried at which seed 0 reached the task's test target
# (docs/experiments.md, "Epoch budgets"); the temperature anneals over the budget. reverse reached
# it below 250 only when annealed to 0.3 rather than the paper's 0.01. most_freq keeps the paper's
# 250: at 100 it lost 3.5 points (71.00% against 74.49%), too many for the paper's 75.69 in the
# grid. Its classifier trains on a step of 1/4 (integer points, no float weights): 75.29% at seed
# 0, where free floats gave 74.49%. The tasks not measured keep the paper's 250. sort trains with
# gates by default, at 300 epochs (the budget of the paper's training stays 50): pruned, its
# programs are 74-97 lines of code at 99.78-99.98% on seeds 0-2 (a penalty of 0.3; 0.2 at 250
# epochs gave 80-107 at 99.88-99.97%), against 113-158 at 99.58-99.95% for the paper's training.
# double_hist trains with gates too, for 300 epochs, the best of three initializations by
# validation: one initialization gave 103, 71 and 31 lines of code pruned at 97.77, 97.37 and
# 100.00% (seeds 0-2), the best of three 57, 82 and 31 at 100.00, 98.43 and 100.00%, against 93,
# 134 and 35 at 98.08, 93.67 and 98.58% for the paper's training; the accurate programs are the
# known algorithm (count, recode, count, table).
# hist starts its temperature at 10, not the paper's 3: at 3, seeds 2 and 3 of 0-9 never left
# 45-46% test (the other eight reached 100%); at 10, all ten reached 100%.
# reverse trains its own smaller model by default (`short_model`: 2 layers, 3+1 heads, 1+1 MLPs,
# soft attention, 400 epochs), where the paper's 3 layers of 4+4 heads pruned to 176-232 lines of
# code; `--sparsity 0 --classifier-step 0` (and the ledger's protocol) still trains the paper's.
REVERSE = _content_task(
    "reverse",
    "reverse the sequence",
    reverse_labels,
    _symbol_labels,
    eos=True,
    model=ModelDefaults(layers=3, heads_cat=4, heads_num=4, mlps_cat=1, mlps_num=1, epochs=70, tau_end=0.3,
                        short_model={"layers": 2, "heads_cat": 3, "heads_num": 1, "mlps_cat": 1, "mlps_num": 1,
                                     "attention": "soft", "epochs": 400}),
)
HIST = _content_task(
    "hist",
    "count the occurrences of each token",
    hist_labels,
    _hist_label_tokens,
    eos=False,
    model=ModelDefaults(layers=1, heads_cat=2, heads_num=2, mlps_cat=1, mlps_num=1, epochs=50, tau_start=10.0),
)
DOUBLE_HIST = _content_task(
    "double_hist",
    "count the distinct tokens whose histogram count equals this token's",
    double_hist_labels,
    _double_hist_label_tokens,
    eos=False,
    model=ModelDefaults(layers=3, heads_cat=2, heads_num=2, mlps_cat=1, mlps_num=1, epochs=100,
                        sparsity=0.1, target_parts=4, classifier_step=0.25, gated_epochs=300, gated_restarts=3),
)
SORT = _content_task(
    "sort",
    "sort the sequence ascending",
    sort_labels,
    _symbol_labels,
    eos=True,
    model=ModelDefaults(layers=3, heads_cat=4, heads_num=4, mlps_cat=2, mlps_num=2, epochs=50,
                        sparsity=0.3, target_parts=8, classifier_step=0.25, gated_epochs=300),
)
MOST_FREQ = _content_task(
    "most_freq",
    "list the distinct tokens by frequency, ties by first occurrence",
    most_freq_labels,
    _most_freq_labels,
    eos=False,
    model=ModelDefaults(layers=3, heads_cat=4, heads_num=4, mlps_cat=2, mlps_num=2, epochs=250,
                        sparsity=0.03, classifier_step=0.25, gated_epochs=300, gated_restarts=3),
)


# ---- Dyck languages: token id 2k opens bracket type k, 2k + 1 closes it. ----

BRACKETS = ("(", ")", "{", "}")
DYCK_FAIL, DYCK_OPEN, DYCK_TRUE = 0, 1, 2
DYCK_LABELS = lookup(["F", "P", "T"])  # indexed by the three constants above


def dyck_labels(x: np.ndarray) -> np.ndarray:
    """Per prefix: DYCK_TRUE if balanced, DYCK_OPEN if it can still be balanced, else DYCK_FAIL."""
    m, length = x.shape
    rows = np.arange(m)
    stack = np.zeros((m, length), dtype=np.int64)
    depth = np.zeros(m, dtype=np.int64)
    failed = np.zeros(m, dtype=bool)
    out = np.empty((m, length), dtype=np.int64)
    for t in range(length):
        kind, is_open = x[:, t] // 2, x[:, t] % 2 == 0
        top = stack[rows, np.maximum(depth - 1, 0)]
        failed |= ~is_open & ((depth == 0) | (top != kind))
        push = is_open & ~failed
        stack[rows[push], depth[push]] = kind[push]
        depth += push.astype(np.int64) - (~is_open & ~failed)
        out[:, t] = np.where(failed, DYCK_FAIL, np.where(depth == 0, DYCK_TRUE, DYCK_OPEN))
    return out


def _dyck_walk(
    rng: np.random.Generator, m: int, length: int, n_types: int, balanced: np.ndarray
) -> np.ndarray:
    """(m, length) token ids of random valid prefixes; `balanced` rows close every bracket
    by the end (when `length` is even; odd lengths end one bracket deep)."""
    rows = np.arange(m)
    x = np.empty((m, length), dtype=np.int64)
    stack = np.zeros((m, length), dtype=np.int64)
    depth = np.zeros(m, dtype=np.int64)
    for t in range(length):
        close = (rng.random(m) < 0.5) | (balanced & (depth >= length - t - 1))
        close &= depth > 0
        kinds = rng.integers(0, n_types, size=m)
        top = stack[rows, np.maximum(depth - 1, 0)]
        x[:, t] = np.where(close, 2 * top + 1, 2 * kinds)
        stack[rows[~close], depth[~close]] = kinds[~close]
        depth += np.where(close, -1, 1)
    return x


def _draw_walks(rng: np.random.Generator, n: int, length: int, n_types: int) -> np.ndarray:
    """(n, length) token ids, a quarter each: balanced random walks, free random walks (valid
    prefixes), balanced walks with one position replaced by a random bracket, and uniformly
    random strings. Harder than `_draw_paper`: wrong brackets sit deep inside long valid
    prefixes, where only matching each bracket with its partner tells them apart."""
    rows = np.arange(n)
    kind = rng.integers(0, 4, size=n)
    x = _dyck_walk(rng, n, length, n_types, balanced=kind != 1)
    corrupt = kind == 2
    x[rows[corrupt], rng.integers(0, length, size=n)[corrupt]] = rng.integers(
        0, 2 * n_types, size=int(corrupt.sum())
    )
    uniform = kind == 3
    x[uniform] = rng.integers(0, 2 * n_types, size=(int(uniform.sum()), length))
    return x


def _draw_paper(rng: np.random.Generator, n: int, length: int, n_types: int) -> np.ndarray:
    """(n, length) token ids drawn as the paper's code draws them (`make_dyck_pft`): half are
    balanced strings of ceil(length / 2) bracket pairs, built by wrapping the string so far in
    a new pair or appending one (even odds), cut to `length`; half are uniformly random."""
    x = np.empty((n, 0), dtype=np.int64)
    for _ in range((length + 1) // 2):
        opening = 2 * rng.integers(0, n_types, size=(n, 1))  # (n, 1)
        wrap = rng.random((n, 1)) < 0.5  # (n, 1)
        wrapped = np.concatenate([opening, x, opening + 1], axis=1)
        appended = np.concatenate([x, opening, opening + 1], axis=1)
        x = np.where(wrap, wrapped, appended)  # (n, 2 * pairs so far)
    x = x[:, :length]
    uniform = rng.random(n) < 0.5
    x[uniform] = rng.integers(0, 2 * n_types, size=(int(uniform.sum()), length))
    return x


DyckDraw = Callable[[np.random.Generator, int, int, int], np.ndarray]


def _sample_dyck(
    name: str,
    n_types: int,
    draw: DyckDraw,
    rng: np.random.Generator,
    n: int,
    min_len: int,
    max_len: int,
    vocab_size: int,
) -> list[Example]:
    """Strings of length `max_len` from `draw` (Dyck strings have one length; `min_len` is only
    checked), labelled per prefix."""
    check_lengths(min_len, max_len)
    check_vocab(name, vocab_size, 2 * n_types, 2 * n_types)
    x = draw(rng, n, max_len, n_types)  # (n, max_len)
    return frame(lookup(BRACKETS)[x], DYCK_LABELS[dyck_labels(x)])


def _dyck_inputs(name: str, n_types: int, vocab_size: int, max_len: int) -> list[str]:
    check_vocab(name, vocab_size, 2 * n_types, 2 * n_types)
    return [BOS, *BRACKETS[: 2 * n_types]]


def _dyck_label_tokens(vocab_size: int, max_len: int) -> list[str]:
    return DYCK_LABELS.tolist()


def _count_dyck(name: str, n_types: int, min_len: int, max_len: int, vocab_size: int) -> int:
    check_vocab(name, vocab_size, 2 * n_types, 2 * n_types)
    return vocab_size**max_len


def _dyck_space(name: str, n_types: int, min_len: int, max_len: int, vocab_size: int) -> InputSpace:
    """Every bracket string of length `max_len` (both samplers can draw each one)."""
    check_vocab(name, vocab_size, 2 * n_types, 2 * n_types)
    return InputSpace(tuple(BRACKETS[: 2 * n_types]), max_len, max_len, False)


def _dyck_task(name: str, n_types: int, model: ModelDefaults, draw: DyckDraw, drawn: str) -> TaskSpec:
    return TaskSpec(
        name=name,
        description=f"is each prefix balanced (T), still balanceable (P) or failed (F): "
        f"Dyck-{n_types}, brackets {' '.join(BRACKETS[: 2 * n_types])}, {drawn}",
        causal=True,
        vocab_size=2 * n_types,
        min_len=15,  # 16 positions with <s>, as in the paper's code
        max_len=15,
        model=model,
        sample=partial(_sample_dyck, name, n_types, draw),
        input_tokens=partial(_dyck_inputs, name, n_types),
        label_tokens=_dyck_label_tokens,
        seq_len=partial(seq_len_affine, 1, 1),
        count_inputs=partial(_count_dyck, name, n_types),
        input_space=partial(_dyck_space, name, n_types),
    )


DYCK1_MODEL = ModelDefaults(layers=3, heads_cat=4, heads_num=4, mlps_cat=1, mlps_num=1)
DYCK2_MODEL = ModelDefaults(layers=3, heads_cat=2, heads_num=2, mlps_cat=2, mlps_num=2, attention="soft")
PAPER_DRAW, WALK_DRAW = "strings as the paper's code draws them", "harder: walks, some with one bracket wrong"
DYCK1 = _dyck_task("dyck1", 1, replace(DYCK1_MODEL, epochs=100), _draw_paper, PAPER_DRAW)
# dyck2's classifier trains on a step of 1/4: integer points, no float weights, at no cost in
# accuracy on three seeds (docs/experiments.md); the walks keep the paper's free weights, unmeasured
DYCK2 = _dyck_task("dyck2", 2, replace(DYCK2_MODEL, epochs=100, classifier_step=0.25), _draw_paper, PAPER_DRAW)
DYCK1_WALKS = _dyck_task("dyck1_walks", 1, DYCK1_MODEL, _draw_walks, WALK_DRAW)
DYCK2_WALKS = _dyck_task("dyck2_walks", 2, DYCK2_MODEL, _draw_walks, WALK_DRAW)
