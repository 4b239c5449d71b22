"""Proof that a simplified program computes what its full program does, on every input, by parts.

Both programs take the same inputs (a simplified program whose space is not listed takes every
sequence), and a simplified program's variables keep their full program's names. By induction
in variable order, each variable the simplified program computes holds the full program's value
at every position of every input when:

- a constant of the simplified program takes only that value in the full one;
- a part is the full program's same part, or one of the same kind that gives the same output
  on every joint value its inputs and the full part's can take at one position (`position_domains`
  of the full program, a sound superset), where a variable may be read through an alias, an
  earlier part of the full program proved to compute the same function of the same inputs: an MLP the same table entry, a head the same key and
  value, causality, and the same key looked for wherever a key it sees can hold it;
- the classifier has the full one's weights on the variables it reads (or all of them times the
  power of two that makes them integers, which multiplies every score exactly, and then also
  with a variable's row added to its alias's, read through the alias), and every
  variable it no longer reads is a constant whose row the bias holds, every score sum being
  exact in float64 (`exact_sums`), so that adding those rows first changes no score; or, given
  as points or rules,
  it gives the full classifier's label on every joint value the variables either reads may take
  at one position (where those can be listed: not for a pooled classifier).

Anything else (too many joint values) is named as a gap, and the
caller checks by running.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import product

import numpy as np

from .classifier_forms import scaled_to_integers
from .domains import joints_anywhere, position_domains
from .interpret import classify
from .ir import (
    CategoricalAttention,
    CategoricalMLP,
    Classifier,
    NumericalAttention,
    Program,
    classifier_reads,
    component_reads,
)
from .simplify import exact_sums, read_through

MAX_CLASSIFIER_JOINT = 2_000_000  # joint values of the classifiers' reads on which both are compared, at most


def _constant(at_each: list[frozenset[int]]) -> int | None:
    """The one value a variable takes at every position some input reaches, if it takes one."""
    values = set().union(*at_each)
    return values.pop() if len(values) == 1 else None


class _Parts:
    """The full program's reachable values and the variables proved to hold equal values (aliases),
    and how to compare a part of the simplified program with the full program's."""

    def __init__(self, full: Program):
        self.at = position_domains(full)
        self.reached = [i for i, values in enumerate(self.at["tokens"]) if values]
        self.alias: dict[str, str] = {}  # a variable -> the first one proved to hold its value everywhere
        first_with: dict[tuple, str] = {}
        for layer in full.layers:
            for part in layer.components():
                key = self.behaviour(part)
                if key is not None:
                    self.alias[part.name] = first_with.setdefault(key, part.name)

    def name(self, variable: str) -> str:
        """The first variable proved to hold `variable`'s value at every position of every input."""
        return self.alias.get(variable, variable)

    def joints(self, parts: list) -> tuple[list[str], list[tuple[int, ...]] | None]:
        """The aliases the parts read, and every joint value they may take at one position (None: too many)."""
        names = list(dict.fromkeys(self.name(read) for part in parts for read in component_reads(part)))
        return names, joints_anywhere(self.at, names, MAX_CLASSIFIER_JOINT)

    def output(self, mlp, names: list[str], row: tuple[int, ...]) -> int:
        """An MLP's output where its inputs' aliases `names` hold `row`."""
        value = {read: row[names.index(self.name(read))] for read in component_reads(mlp)}
        if isinstance(mlp, CategoricalMLP):
            return mlp.table[value[mlp.first]][value[mlp.second]]
        return mlp.table[min(value[mlp.source], len(mlp.table) - 1)]

    def looked_for(self, head, i: int, q: int) -> int | None:
        """The key value a query of value q at position i looks for, or None where no key it sees can hold it."""
        target = head.predicate[q]
        first = 1 if isinstance(head, CategoricalAttention) else 0  # position 0 is also the fallback
        keys = self.at[self.name(head.key)]
        visible = range(first, i + 1 if head.causal else len(keys))
        return target if any(target in keys[j] for j in visible) else None

    def head_inputs(self, head) -> tuple:
        return type(head), self.name(head.key), self.name(head.value), head.causal

    def behaviour(self, part) -> tuple | None:
        """What a part computes from its inputs' aliases, on every value they may take: equal for
        two parts that hold equal values on every input (None where there are too many values)."""
        if isinstance(part, (CategoricalAttention, NumericalAttention)):
            query = self.name(part.query)
            targets = tuple((i, q, self.looked_for(part, i, q)) for i in self.reached for q in sorted(self.at[query][i]))
            return (*self.head_inputs(part), query, targets)
        names, rows = self.joints([part])
        if rows is None:
            return None
        reads = tuple(self.name(read) for read in component_reads(part))
        return type(part), reads, tuple(self.output(part, names, row) for row in rows)

    def same_mlp(self, mine, theirs) -> bool:
        """Same output on every joint value of both parts' inputs at one position."""
        names, rows = self.joints([mine, theirs])
        return rows is not None and all(self.output(mine, names, r) == self.output(theirs, names, r) for r in rows)

    def same_head(self, mine, theirs) -> bool:
        """Same key, value and causality, and the same key looked for at every joint query value."""
        if self.head_inputs(mine) != self.head_inputs(theirs):
            return False
        mine_query, their_query = self.name(mine.query), self.name(theirs.query)
        for i in self.reached:
            pairs = ([(q, q) for q in self.at[mine_query][i]] if mine_query == their_query else
                     product(self.at[mine_query][i], self.at[their_query][i]))
            if any(self.looked_for(mine, i, a) != self.looked_for(theirs, i, b) for a, b in pairs):
                return False
        return True


def simplified_gaps(full: Program, simplified: Program) -> list[str]:
    """The parts of `simplified` not proved to compute what `full` does on every input; [] when all are."""
    if simplified.input_space is not None or any(v.values is not None for v in simplified.variables):
        return ["simplified program: defined from listed inputs, which this proof does not cover"]
    parts = _Parts(full)
    gaps = []
    if simplified.embeddings != [e for e in full.embeddings if e.name in {s.name for s in simplified.embeddings}]:
        gaps.append("embeddings: not the full program's")
    for variable in simplified.variables:
        if variable.constant is not None and _constant(parts.at[variable.name]) != variable.constant:
            gaps.append(f"{variable.name}: a constant {variable.constant}, not proved constant in the full program")
    theirs = {c.name: c for layer in full.layers for c in layer.components()}
    for layer in simplified.layers:
        for mine in layer.components():
            other = theirs.get(mine.name)
            if mine == other:
                continue
            same = other is not None and type(mine) is type(other) and (
                parts.same_head(mine, other) if isinstance(mine, (CategoricalAttention, NumericalAttention))
                else parts.same_mlp(mine, other))
            if not same:
                gaps.append(f"{mine.name}: not proved to compute the full program's {mine.name}")
    return gaps + _classifier_gaps(full, simplified, parts)


def _classifier_gaps(full: Program, simplified: Program, parts: _Parts) -> list[str]:
    """Where the simplified classifier is not proved to label every input as the full one: by
    its weights where it keeps the full one's, else by its label on every joint value."""
    reason = _same_scores(full, simplified, parts)
    if reason is None:
        return []
    disagreement = _same_labels(full, simplified, parts)
    return [] if disagreement is None else [f"classifier: {reason}, and {disagreement}"]


def _same_scores(full: Program, simplified: Program, parts: _Parts) -> str | None:
    """None where the simplified classifier has the full one's weights on what it reads, and a bias
    that holds the rows of proved constants with every sum exact; else why not."""
    mine, original = simplified.classifier, full.classifier
    if not isinstance(mine, Classifier) or not isinstance(original, Classifier) or mine.pooled != original.pooled:
        return "given as rules"
    # The full classifier, or it times the power of two that makes it integers: every score
    # times that power, exactly, so every label the same. Integer points may also read each
    # variable through its alias, one row the sum of both (as `merge_duplicates` writes them):
    # the alias holds the same value everywhere, and integers add exactly in any grouping.
    scaled = scaled_to_integers(original)
    merged = read_through(scaled, parts.alias)
    theirs = next((c for c in (original, scaled, merged) if _same_weights(mine, c)), None)
    if theirs is None:
        return "its weights are not the full program's"
    domains = {name: sorted(set().union(*at)) for name, at in parts.at.items()}
    if theirs is merged and not exact_sums(scaled, domains):
        return "it reads variables through their aliases, and its sums are not proved exact"
    if mine.bias == theirs.bias and mine.categorical.keys() == theirs.categorical.keys() \
            and mine.numerical.keys() == theirs.numerical.keys():
        return None
    bias = [Fraction(weight) for weight in theirs.bias]
    for name in [*theirs.categorical, *theirs.numerical]:
        if name in mine.categorical or name in mine.numerical:
            continue
        value = _constant(parts.at[name])
        if value is None:
            return f"it no longer reads {name}, which is not proved constant"
        row = theirs.categorical[name][value] if name in theirs.categorical else \
            [weight * value for weight in theirs.numerical[name]]
        bias = [total + Fraction(add) for total, add in zip(bias, row)]
    if bias != [Fraction(weight) for weight in mine.bias] or not exact_sums(theirs, domains):
        return "its bias is not proved to hold the rows of the constants it no longer reads"
    return None


def _same_weights(mine: Classifier, theirs: Classifier) -> bool:
    """Whether `mine` has `theirs`'s weights on every variable it reads."""
    return all(theirs.categorical.get(name) == table for name, table in mine.categorical.items()) and \
        all(theirs.numerical.get(name) == row for name, row in mine.numerical.items())


def _same_labels(full: Program, simplified: Program, parts: _Parts) -> str | None:
    """None where both classifiers give the same label on every joint value that the variables
    either reads may take at one position (a superset of those inputs reach); else why not."""
    if isinstance(full.classifier, Classifier) and full.classifier.pooled:
        return "a pooled classifier reads every position at once, so its joint values cannot be listed"
    reads = [v.name for v in full.variables if v.name in {*classifier_reads(full), *classifier_reads(simplified)}]
    names = list(dict.fromkeys(parts.name(read) for read in reads))
    rows = joints_anywhere(parts.at, names, MAX_CLASSIFIER_JOINT)
    if rows is None:
        return f"its reads take more than {MAX_CLASSIFIER_JOINT:,} joint values"
    values = np.array(rows, dtype=np.int64).reshape(len(rows), len(names))  # (N, reads)
    trace = {v.name: np.zeros((len(rows), 1), dtype=np.int64) for v in full.variables}  # (N, 1) each
    trace["tokens"] = np.ones((len(rows), 1), dtype=np.int64)  # a real position; its value where it is read
    trace.update({read: values[:, [names.index(parts.name(read))]] for read in reads})
    by_full, by_simplified = classify(full, trace)[:, 0], classify(simplified, trace)[:, 0]  # (N,)
    wrong = np.flatnonzero(by_full != by_simplified)
    if wrong.size:
        return f"it labels {dict(zip(names, rows[int(wrong[0])]))} otherwise than the full program"
    return None
