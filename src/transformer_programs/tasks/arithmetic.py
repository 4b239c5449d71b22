"""Addition of two numbers, plain or with index hints (the reproduction study's extra task)."""

from __future__ import annotations

import string
from dataclasses import replace
from functools import partial

import numpy as np

from ..vocab import BOS, PAD
from .base import (
    Example,
    ModelDefaults,
    TaskSpec,
    check_lengths,
    check_vocab,
    digit_symbols,
    frame,
    lookup,
    seq_len_affine,
)

PLUS = "+"
HINTS = string.ascii_lowercase  # place-value hints: ones "a", tens "b", ...


def _check(name: str, hints: bool, max_len: int, base: int) -> None:
    check_vocab(name, base, 2, 10)
    if hints and max_len + 1 > len(HINTS):  # the sum has up to max_len + 1 places
        raise ValueError(f"{name}: at most {len(HINTS) - 1} digits per operand, got {max_len}")


def _operand(digits: np.ndarray, hints: bool) -> np.ndarray:
    """Tokens of numbers given as (m, l) digits, most significant first; with hints each digit
    is preceded by the letter of its place."""
    symbols = lookup(digit_symbols(10))[digits]
    if not hints:
        return symbols
    m, length = digits.shape
    out = np.empty((m, 2 * length), dtype=symbols.dtype)
    out[:, 0::2] = lookup(HINTS[:length][::-1])
    out[:, 1::2] = symbols
    return out


def _add(a: np.ndarray, b: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Digits of a + b, least significant first, (m, width), and each sum's digit count.

    The digit count is that of the plain number without leading zeros (1 for a sum of 0).
    """
    m = a.shape[0]
    width = max(a.shape[1], b.shape[1]) + 1
    columns = np.zeros((m, width), dtype=np.int64)
    columns[:, : a.shape[1]] += a[:, ::-1]
    columns[:, : b.shape[1]] += b[:, ::-1]
    out = np.empty((m, width), dtype=np.int64)
    carry = np.zeros(m, dtype=np.int64)
    for place in range(width):
        carry, out[:, place] = np.divmod(columns[:, place] + carry, base)
    nonzero = out != 0
    n_digits = np.where(nonzero.any(axis=1), width - np.argmax(nonzero[:, ::-1], axis=1), 1)
    return out, n_digits


def _sum_labels(
    total: np.ndarray, n_digits: np.ndarray, length: int, reverse_sum: bool, hints: bool
) -> np.ndarray:
    """(m, length) labels after BOS: the sum's digits (with hints: hint, digit pairs) from the
    most significant place (least with `reverse_sum`), then "<pad>"."""
    step = 2 if hints else 1
    q = np.arange(length // step)[None, :]  # the q-th digit written
    place = q if reverse_sum else n_digits[:, None] - 1 - q
    valid = q < n_digits[:, None]
    digits = np.take_along_axis(total, np.clip(place, 0, total.shape[1] - 1), axis=1)
    out = np.full((total.shape[0], length), PAD, dtype=object)
    out[:, step - 1 : step * q.shape[1] : step] = np.where(
        valid, lookup(digit_symbols(10))[digits], PAD
    )
    if hints:
        letters = lookup(HINTS)[np.clip(place, 0, len(HINTS) - 1)]
        out[:, 0 : 2 * q.shape[1] : 2] = np.where(valid, letters, PAD)
    return out


def _sample_addition(
    name: str,
    reverse_sum: bool,
    hints: bool,
    rng: np.random.Generator,
    n: int,
    min_len: int,
    max_len: int,
    vocab_size: int,
) -> list[Example]:
    """Operand digit counts uniform in `min_len..max_len` (independently), digits uniform in
    base `vocab_size`, leading zeros allowed."""
    check_lengths(min_len, max_len)
    _check(name, hints, max_len, vocab_size)
    n_a = rng.integers(min_len, max_len + 1, size=n)
    n_b = rng.integers(min_len, max_len + 1, size=n)
    out: list[Example] = [([], [])] * n
    for len_a, len_b in sorted(set(zip(n_a.tolist(), n_b.tolist()))):
        rows = np.flatnonzero((n_a == len_a) & (n_b == len_b))
        a = rng.integers(0, vocab_size, size=(len(rows), len_a))
        b = rng.integers(0, vocab_size, size=(len(rows), len_b))
        plus = np.full((len(rows), 1), PLUS, dtype=object)
        tokens = np.concatenate([_operand(a, hints), plus, _operand(b, hints)], axis=1)
        total, n_digits = _add(a, b, vocab_size)
        labels = _sum_labels(total, n_digits, tokens.shape[1], reverse_sum, hints)
        for row, example in zip(rows, frame(tokens, labels)):
            out[row] = example
    return out


def _input_tokens(name: str, hints: bool, vocab_size: int, max_len: int) -> list[str]:
    _check(name, hints, max_len, vocab_size)
    return [BOS, *digit_symbols(vocab_size), PLUS, *(HINTS[:max_len] if hints else [])]


def _label_tokens(name: str, hints: bool, vocab_size: int, max_len: int) -> list[str]:
    _check(name, hints, max_len, vocab_size)
    return [*digit_symbols(vocab_size), *(HINTS[: max_len + 1] if hints else [])]


def _count(name: str, min_len: int, max_len: int, vocab_size: int) -> int:
    check_vocab(name, vocab_size, 2, 10)
    per_operand = sum(vocab_size**length for length in range(min_len, max_len + 1))
    return per_operand**2


# The study's smaller size. Soft attention: at this size and 250 epochs 61.11% test against
# 35.94% with sharp (plain), 82.08% against 65.68% (hints); docs/experiments.md.
STUDY_MODEL = ModelDefaults(layers=3, heads_cat=2, heads_num=2, mlps_cat=4, mlps_num=4, attention="soft")
# With hints, the study's larger size (16 heads, 8 MLPs) and the temperature annealed to 0.1
# only: 91.58% test (seed 0) against 88.41% annealed to the paper's 0.01; in the study's
# format 90.71% against 89.49%; docs/experiments.md.
ADDITION_HINTS_MODEL = replace(STUDY_MODEL, heads_cat=8, heads_num=8, tau_end=0.1)
# Plain, a layer more and 20 values, room for a sum of two digits (0-18) as one value: 85.65%
# test against 76.53% at the hints' size and 61.11% at the study's; in the study's format
# 93.58% against 80.54% at the study's smaller size; docs/experiments.md.
ADDITION_MODEL = replace(ADDITION_HINTS_MODEL, layers=4, d_values=20)


def _model(hints: bool) -> ModelDefaults:
    """The default size of addition, with or without hints, in either format."""
    return ADDITION_HINTS_MODEL if hints else ADDITION_MODEL


def make_addition(reverse_sum: bool, hints: bool) -> TaskSpec:
    """The addition task: input "<s>" a "+" b, labels the digits of a + b right after "<s>".

    `reverse_sum` writes the sum least significant digit first;
    `hints` precedes every digit, in the input and in the labels, by a letter for its place
    ("a" ones, "b" tens, ...): 31+456 -> <s> b 3 a 1 + c 4 b 5 a 6, labels c 4 b 8 a 7.
    The vocabulary size is the base (default 10); lengths are digits per operand.
    """
    name = "addition" + ("_hints" if hints else "")
    order = "least" if reverse_sum else "most"
    return TaskSpec(
        name=name,
        description=f"add two numbers{' with index hints' if hints else ''}, "
        f"sum {order} significant digit first",
        causal=False,
        vocab_size=10,
        min_len=1,
        max_len=2,
        model=_model(hints),
        sample=partial(_sample_addition, name, reverse_sum, hints),
        input_tokens=partial(_input_tokens, name, hints),
        label_tokens=partial(_label_tokens, name, hints),
        seq_len=partial(seq_len_affine, 4 if hints else 2, 2),
        count_inputs=partial(_count, name),
    )


# ---- The reproduction study's format: its labels, its hint letters and its scoring. ----


def _hinted_from_left(symbols: list[str]) -> list[str]:
    """Each symbol preceded by a letter counting from the left ("a" first), as the study wrote
    both operands and the sum: 31 -> a 3 b 1."""
    return [token for letter, symbol in zip(HINTS, symbols) for token in (letter, symbol)]


def _study_example(a: list[int], b: list[int], hints: bool, base: int) -> tuple[list[str], list[str]]:
    """One example in the study's format: labels the sum as one token (plain) or as hinted
    digits (hints), then "<s>" at every remaining position, scored as a label of its own."""
    digits = digit_symbols(base)
    a_symbols, b_symbols = [digits[d] for d in a], [digits[d] for d in b]
    total = int("".join(a_symbols), base) + int("".join(b_symbols), base)
    written = np.base_repr(total, base)
    if hints:
        content = [*_hinted_from_left(a_symbols), PLUS, *_hinted_from_left(b_symbols)]
        answer = _hinted_from_left(list(written))
    else:
        content = [*a_symbols, PLUS, *b_symbols]
        answer = [written]
    return [BOS, *content], [PAD, *answer, *[BOS] * (len(content) - len(answer))]


def _sample_study(
    name: str, hints: bool, rng: np.random.Generator, n: int, min_len: int, max_len: int, vocab_size: int
) -> list[Example]:
    """Operand digit counts uniform in `min_len..max_len` (independently), digits uniform in
    base `vocab_size`, leading zeros allowed: the study's text ("a minimum length of 1 and a
    maximum length of 2")."""
    check_lengths(min_len, max_len)
    _check(name, hints, max_len, vocab_size)
    n_a, n_b = (rng.integers(min_len, max_len + 1, size=n).tolist() for _ in range(2))
    return [_study_example(rng.integers(0, vocab_size, size=len_a).tolist(), rng.integers(0, vocab_size, size=len_b).tolist(),
                           hints, vocab_size) for len_a, len_b in zip(n_a, n_b)]


def _study_label_tokens(name: str, hints: bool, vocab_size: int, max_len: int) -> list[str]:
    _check(name, hints, max_len, vocab_size)
    if hints:
        return [*digit_symbols(vocab_size), *HINTS[: max_len + 1], BOS]
    largest = 2 * (vocab_size**max_len - 1)
    return [np.base_repr(total, vocab_size) for total in range(largest + 1)] + [BOS]


def make_study_addition(hints: bool) -> TaskSpec:
    """Addition as the reproduction study generated and scored it (name suffix "_study").

    Plain: "<s>" a "+" b labelled by the whole sum as one token, e.g. 57+6 -> labels "63" "<s>"
    "<s>" "<s>". Hints: every digit of both operands and of the sum preceded by a letter counting
    from the left, 31+45 -> <s> a 3 b 1 + a 4 b 5, labels a 7 b 6 <s> <s> <s>. The "<s>" that
    fills the labels up to the input's length is scored like any label; only the first position
    is not.
    """
    name = "addition" + ("_hints" if hints else "") + "_study"
    return TaskSpec(
        name=name,
        description=("add two numbers with index hints counted from the left" if hints else "add two numbers, the sum "
                     "as one token") + "; the reproduction study's format, filler labels scored",
        causal=False,
        vocab_size=10,
        min_len=1,
        max_len=2,
        model=_model(hints),
        sample=partial(_sample_study, name, hints),
        input_tokens=partial(_input_tokens, name, hints),
        label_tokens=partial(_study_label_tokens, name, hints),
        seq_len=partial(seq_len_affine, 4 if hints else 2, 2),
        count_inputs=partial(_count, name),
    )


# The digit order of each task's sum unless a run says otherwise: plain addition least significant
# first, the order in which carries are computed (93.31% test against 85.65% most significant
# first, at the default size, seed 0); with hints most significant first (91.58%).
REVERSE_SUM_DEFAULT = {"addition": True, "addition_hints": False}
ADDITION = make_addition(REVERSE_SUM_DEFAULT["addition"], hints=False)
ADDITION_HINTS = make_addition(REVERSE_SUM_DEFAULT["addition_hints"], hints=True)
ADDITION_STUDY = make_study_addition(hints=False)
ADDITION_HINTS_STUDY = make_study_addition(hints=True)
