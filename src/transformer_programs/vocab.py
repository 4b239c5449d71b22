"""Token <-> id maps for inputs and labels, and encoding of examples into padded tensors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import torch

PAD = "<pad>"  # id 0 in every vocabulary; as a label it means "not scored"
BOS = "<s>"
EOS = "</s>"
DIGITS = re.compile(r"[0-9]+")  # a word task may read every run of digits as one "@"


class VocabError(ValueError):
    """A token that is not in the vocabulary."""


@dataclass(frozen=True)
class Vocab:
    """An ordered list of tokens; `PAD` is always id 0."""

    tokens: tuple[str, ...]

    @classmethod
    def build(cls, tokens: Sequence[str]) -> "Vocab":
        """A vocabulary of `PAD` followed by `tokens` (duplicates and `PAD` itself dropped)."""
        seen: dict[str, None] = {PAD: None}
        for token in tokens:
            seen.setdefault(token, None)
        return cls(tuple(seen))

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def index(self) -> dict[str, int]:
        return {token: i for i, token in enumerate(self.tokens)}

    def encode(self, sequences: Sequence[Sequence[str]], length: int) -> torch.Tensor:
        """Ids of `sequences` right-padded to `length`: (n, length) int64. Unknown tokens raise."""
        index = self.index
        out = torch.zeros(len(sequences), length, dtype=torch.long)  # (n, length)
        for row, sequence in enumerate(sequences):
            if len(sequence) > length:
                raise VocabError(f"sequence of length {len(sequence)} exceeds {length}")
            try:
                out[row, : len(sequence)] = torch.tensor([index[t] for t in sequence])
            except KeyError as err:
                raise VocabError(f"token {err.args[0]!r} is not in the vocabulary") from None
        return out

    def decode(self, ids: Sequence[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def to_json(self) -> list[str]:
        return list(self.tokens)

    @classmethod
    def from_json(cls, tokens: list[str]) -> "Vocab":
        if not tokens or tokens[0] != PAD:
            raise VocabError("a stored vocabulary must start with '<pad>'")
        return cls(tuple(tokens))
