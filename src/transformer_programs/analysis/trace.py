"""Trace: every variable's value at every position of one input, and what each head read."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..program.interpret import as_tokens, closest, encode_tokens, matches, run_batch
from ..program.ir import Program


def show(program: Program, variable: str, value: int) -> str:
    """A variable's value as a reader sees it: the token for token values, else the number."""
    kind = "token" if variable == "tokens" else program.variable(variable).kind
    return program.input_vocab[value] if kind == "token" else str(int(value))


def head_patterns(program: Program, trace: dict[str, np.ndarray], valid: np.ndarray) -> dict[str, np.ndarray]:
    """For each attention head, (B, query, key) booleans: the key a categorical head reads (one
    per query, position 0 when nothing matches) or every key a numerical head sums."""
    patterns = {}
    for layer in program.layers:
        for head in layer.attention:
            chosen = closest(matches(head, trace, valid))  # (B, query)
            patterns[head.name] = np.arange(valid.shape[1])[None, None, :] == chosen[..., None]
        for head in layer.numerical_attention:
            patterns[head.name] = matches(head, trace, valid)
    return patterns


@dataclass
class Trace:
    """One input run through a program: values by variable (program order) and position."""

    tokens: list[str]
    labels: list[str]  # the prediction at each position
    values: dict[str, list[str]]  # variable -> its value at each position, as shown
    reads: dict[str, list[list[int]]]  # attention head -> for each query, the key positions it read

    def table(self) -> str:
        """Variables as rows, positions as columns, then each head's reads and the prediction."""
        rows = [["position", *map(str, range(len(self.tokens)))]]
        rows += [[name, *values] for name, values in self.values.items()]
        for head, reads in self.reads.items():
            rows.append([f"{head} reads", *(",".join(map(str, keys)) if keys else "-" for keys in reads)])
        rows.append(["prediction", *self.labels])
        widths = [max(len(row[n]) for row in rows) for n in range(len(rows[0]))]
        return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)

    def to_json(self) -> dict:
        return asdict(self)


def trace(program: Program, tokens: list[str]) -> Trace:
    """The trace of one input (list of token strings) through `program`; words are shown as the
    program reads them (an unknown word as <unk>)."""
    ids = encode_tokens(program, list(tokens))
    labels, values = run_batch(program, ids)
    valid = ids != 0
    patterns = head_patterns(program, values, valid)
    shown = {name: [show(program, name, v) for v in column[0].tolist()] for name, column in values.items()}
    reads = {name: [np.flatnonzero(row).tolist() for row in pattern[0]] for name, pattern in patterns.items()}
    return Trace(as_tokens(program, list(tokens)), [program.label_vocab[i] for i in labels[0].tolist()], shown, reads)
