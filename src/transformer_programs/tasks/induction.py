"""The induction-head task of the paper (section 4.1): recall the digit that followed a letter."""

from __future__ import annotations

import string
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
    sample_by_length,
    seq_len_affine,
)

UNK = "unk"  # label of a letter that has not occurred before
LETTERS = string.ascii_lowercase


def _letters(vocab_size: int) -> list[str]:
    check_vocab("induction", vocab_size, 1, len(LETTERS))
    return list(LETTERS[:vocab_size])


def _batch(rng: np.random.Generator, m: int, length: int, vocab_size: int) -> list[Example]:
    """`m` sequences of `length` content tokens: letter, digit, letter, digit, ...

    Within a sequence every letter keeps one digit (a random key -> value map). The label of a
    letter is the digit that followed its most recent earlier occurrence ("unk" on its first
    occurrence); digits are not scored.
    """
    n_letters, n_digits = (length + 1) // 2, length // 2
    letters = rng.integers(0, vocab_size, size=(m, n_letters))
    value = rng.integers(0, vocab_size, size=(m, vocab_size))  # the digit of each letter
    digits = np.take_along_axis(value, letters, axis=1)  # (m, n_letters)
    earlier = np.tril(np.ones((n_letters, n_letters), dtype=bool), k=-1)  # [i, j]: j < i
    seen = ((letters[:, :, None] == letters[:, None, :]) & earlier).any(axis=2)
    letter_syms = lookup(_letters(vocab_size))
    digit_syms = lookup(digit_symbols(vocab_size))
    tokens = np.empty((m, length), dtype=object)
    tokens[:, 0::2] = letter_syms[letters]
    tokens[:, 1::2] = digit_syms[digits[:, :n_digits]]
    labels = np.full((m, length), PAD, dtype=object)
    labels[:, 0::2] = np.where(seen, digit_syms[digits], UNK)
    return frame(tokens, labels)


def sample_induction(
    rng: np.random.Generator, n: int, min_len: int, max_len: int, vocab_size: int
) -> list[Example]:
    """`n` induction examples with content lengths uniform in `min_len..max_len`."""
    check_lengths(min_len, max_len)
    _letters(vocab_size)
    return sample_by_length(rng, n, min_len, max_len, partial(_batch, vocab_size=vocab_size))


def _input_tokens(vocab_size: int, max_len: int) -> list[str]:
    return [BOS, *_letters(vocab_size), *digit_symbols(vocab_size)]


def _label_tokens(vocab_size: int, max_len: int) -> list[str]:
    return [*digit_symbols(vocab_size), UNK]


def count_induction(min_len: int, max_len: int, vocab_size: int) -> int:
    """Distinct inputs: letters are free; a digit is free only after a letter's first occurrence."""
    _letters(vocab_size)
    total = 0
    for length in range(min_len, max_len + 1):
        n_letters, n_digits = (length + 1) // 2, length // 2
        # ways[k]: letter sequences (of the letters that get a digit) with k distinct letters.
        ways = [1] + [0] * n_digits
        for _ in range(n_digits):
            ways = [
                ways[k] * k + (ways[k - 1] * (vocab_size - k + 1) if k else 0)
                for k in range(n_digits + 1)
            ]
        weighted = sum(w * vocab_size**k for k, w in enumerate(ways))
        total += weighted * vocab_size ** (n_letters - n_digits)
    return total


INDUCTION = TaskSpec(
    name="induction",
    description="at each letter, recall the digit that followed its previous occurrence",
    causal=True,
    vocab_size=4,  # 4 letters and 4 digits: the paper's vocabulary of 10 with <pad> and <s>
    min_len=9,
    max_len=9,
    model=ModelDefaults(layers=2, heads_cat=1, heads_num=0, mlps_cat=0, mlps_num=0),
    sample=sample_induction,
    input_tokens=_input_tokens,
    label_tokens=_label_tokens,
    seq_len=partial(seq_len_affine, 1, 1),
    count_inputs=count_induction,
)
