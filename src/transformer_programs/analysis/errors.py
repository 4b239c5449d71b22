"""Error groups: a program's mistakes, grouped by the branch of the part that chose the wrong value.

For a wrong prediction, the part to blame is the variable the classifier reads whose value,
changed alone to another value, would have given the right label (where several would: the one
computed last among those that depend on the tokens, not on the position alone). Its branch is
what it did at that position: the key an attention head looked for and the value it read, the
inputs an MLP saw. Mistakes with the same part, branch, prediction and truth form a group, shown
with its shortest example and that example's trace.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..program.domains import one_input_function, position_domains, value_domains
from ..program.interpret import classify, matches, run_batch
from ..program.ir import (
    CategoricalAttention,
    CategoricalMLP,
    NumericalAttention,
    NumericalMLP,
    Program,
    classifier_reads,
    component_reads,
)
from .trace import Trace, head_patterns, show, trace


@dataclass
class ErrorGroup:
    """Mistakes with one cause: `part` (a variable; "classifier" when no single one would fix them)."""

    part: str
    branch: str  # what the part did, in words
    predicted: str
    expected: str
    count: int  # mistaken positions in the group
    example: list[str]  # the shortest input that shows it
    position: int  # the mistaken position in that input
    trace: Trace  # of the example

    def summary(self) -> str:
        """One line: count, part, branch, labels and the example."""
        return (f"{self.count:>5}  {self.part}: {self.branch}; predicted {self.predicted!r}, expected "
                f"{self.expected!r} (e.g. {' '.join(self.example)} at position {self.position})")

    def to_json(self) -> dict:
        return asdict(self)


def positional(program: Program) -> set[str]:
    """The variables that depend on the position alone, never on the tokens (positions, ones,
    constants, tables of those): their value cannot be a wrong choice about the input."""
    fixed = {"positions", "ones"} | {v.name for v in program.variables if v.constant is not None}
    for layer in program.layers:
        for component in layer.components():
            if isinstance(component, (CategoricalMLP, NumericalMLP)) and set(component_reads(component)) <= fixed:
                fixed.add(component.name)
    return fixed


def _culprits(program: Program, trace: dict, where: tuple, expected: np.ndarray) -> list[str]:
    """For each mistaken position, the read variable whose value alone, changed to any value it
    can hold (every categorical value; a count's reachable ones), fixes it: the last such one
    that depends on the tokens, else the last such one."""
    domains = value_domains(program)
    rows = {name: trace[name][where][:, None] for name in trace}  # (E, 1) per variable
    culprit = ["classifier"] * len(expected)
    by_position = positional(program)
    reads = sorted(classifier_reads(program), key=lambda name: name not in by_position)  # positional first
    for name in reads:
        fixed = np.zeros(len(expected), dtype=bool)
        for value in domains[name] if program.variable(name).numerical else range(program.d):
            changed = {**rows, name: np.full_like(rows[name], value)}
            fixed |= classify(program, changed)[:, 0] == expected
        for n in np.flatnonzero(fixed):
            culprit[n] = name
    return culprit


def _branch(program: Program, name: str, trace: dict, patterns: dict, valid: np.ndarray, b: int, i: int) -> str:
    """What the part producing `name` did at position i of input b."""
    producers = {c.name: c for layer in program.layers for c in layer.components()}
    producers.update({e.name: e for e in program.embeddings})
    part = producers.get(name)

    def value(variable: str, position: int = i) -> str:
        return show(program, variable, int(trace[variable][b, position]))

    if isinstance(part, (CategoricalAttention, NumericalAttention)):
        query = int(trace[part.query][b, i])
        target = part.predicate[query]
        looked_for = show(program, part.key, target) if target in value_domains(program)[part.key] else "(none)"
        keys = np.flatnonzero(patterns[name][b, i]).tolist()
        if isinstance(part, NumericalAttention):
            return f"query {part.query}={value(part.query)} counts keys {part.key}={looked_for}: {value(name)}"
        row = {variable: column[b : b + 1] for variable, column in trace.items()}
        found = matches(part, row, valid[b : b + 1])[0, i].any()
        read = f"reads position {keys[0]}" if found else "nothing matches, reads position 0"
        return f"query {part.query}={value(part.query)} looks for {part.key}={looked_for}; {read}: {value(name)}"
    if isinstance(part, CategoricalMLP):
        alone = one_input_function(part, position_domains(program))
        inputs = [alone[0]] if alone is not None else [part.first, part.second]
        return ", ".join(f"{source}={value(source)}" for source in inputs) + f" -> {value(name)}"
    if isinstance(part, NumericalMLP):
        return f"{part.source}={value(part.source)} -> {value(name)}"
    if name == "classifier":
        return "its rule for " + ", ".join(f"{r}={value(r)}" for r in classifier_reads(program))
    return f"{name}={value(name)}"


def error_groups(program: Program, inputs: np.ndarray, labels: np.ndarray) -> list[ErrorGroup]:
    """The mistakes of `program` on (inputs, labels) id arrays (N, T), grouped, largest first."""
    predicted, values = run_batch(program, inputs)
    wrong = (labels != 0) & (predicted != labels)  # (N, T)
    where = np.nonzero(wrong)
    if not len(where[0]):
        return []
    patterns = head_patterns(program, values, inputs != 0)
    culprits = _culprits(program, values, where, labels[where])
    lengths = (inputs != 0).sum(1)
    groups: dict[tuple, list[tuple[int, int]]] = {}
    for (b, i), culprit in zip(zip(*where), culprits):
        branch = _branch(program, culprit, values, patterns, inputs != 0, int(b), int(i))
        key = (culprit, branch, int(predicted[b, i]), int(labels[b, i]))
        groups.setdefault(key, []).append((int(b), int(i)))
    out = []
    for (culprit, branch, got, want), members in groups.items():
        b, i = min(members, key=lambda member: (lengths[member[0]], member))
        example = [program.input_vocab[t] for t in inputs[b, : lengths[b]].tolist()]
        out.append(ErrorGroup(culprit, branch, program.label_vocab[got], program.label_vocab[want], len(members),
                              example, i, trace(program, example)))
    return sorted(out, key=lambda group: (-group.count, group.part, group.branch))
