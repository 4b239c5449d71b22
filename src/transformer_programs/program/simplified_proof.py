"""Proof that a simplified program computes what its full program does, on every input, by parts.

Both programs take the same inputs (a simplified program whose space is not listed takes every
sequence), and a simplified program's variables keep their full program's names. By induction
in variable order, each variable the simplified program computes holds the full program's value
at every position of every input when:

- a constant of the simplified program takes only that value in the full one;
- a part is the full program's same part, or one of the same kind that gives the same output
  on every joint value its inputs and the full part's can take at one position (`position_domains`
  of the full program, a sound superset): an MLP the same table entry, a head the same key and
  value, causality, and the same key looked for wherever a key it sees can hold it;
- the classifier has the full one's weights on the variables it reads, and every variable it no
  longer reads is a constant whose row the bias holds, every score sum being exact in float64
  (`exact_sums`), so that adding those rows first changes no score.

Anything else (a classifier given as points or rules, a part read through a duplicate) is named
as a gap, and the caller checks by running.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import product

from .domains import position_domains
from .ir import CategoricalAttention, CategoricalMLP, Classifier, NumericalAttention, Program, component_reads
from .simplify import exact_sums


def _constant(at_each: list[frozenset[int]]) -> int | None:
    """The one value a variable takes at every position some input reaches, if it takes one."""
    values = set().union(*at_each)
    return values.pop() if len(values) == 1 else None


class _Parts:
    """The full program's reachable values, and how to compare a part of the simplified program with its own."""

    def __init__(self, full: Program):
        self.at = position_domains(full)
        self.reached = [bool(values) for values in self.at["tokens"]]

    def same_mlp(self, mine, theirs) -> bool:
        """Same output on every joint value of both parts' inputs at one position."""
        names = list(dict.fromkeys([*component_reads(mine), *component_reads(theirs)]))
        for sets in set(zip(*(self.at[name] for name in names))):
            for row in product(*sets):
                value = dict(zip(names, row))
                if _output(mine, value) != _output(theirs, value):
                    return False
        return True

    def looked_for(self, head, i: int, q: int) -> int | None:
        """The key value a query of value q at position i looks for, or None where no key it sees can hold it."""
        target = head.predicate[q]
        first = 1 if isinstance(head, CategoricalAttention) else 0  # position 0 is also the fallback
        keys = self.at[head.key]
        visible = range(first, i + 1 if head.causal else len(keys))
        return target if any(target in keys[j] for j in visible) else None

    def same_head(self, mine, theirs) -> bool:
        """Same key, value and causality, and the same key looked for at every joint query value."""
        if (type(mine), mine.key, mine.value, mine.causal) != (type(theirs), theirs.key, theirs.value, theirs.causal):
            return False
        for i, reached in enumerate(self.reached):
            if not reached:
                continue
            pairs = ([(q, q) for q in self.at[mine.query][i]] if mine.query == theirs.query else
                     product(self.at[mine.query][i], self.at[theirs.query][i]))
            if any(self.looked_for(mine, i, a) != self.looked_for(theirs, i, b) for a, b in pairs):
                return False
        return True


def _output(mlp, value: dict[str, int]) -> int:
    """An MLP's output on the values of its inputs."""
    if isinstance(mlp, CategoricalMLP):
        return mlp.table[value[mlp.first]][value[mlp.second]]
    return mlp.table[min(value[mlp.source], len(mlp.table) - 1)]


def _rows(classifier: Classifier) -> list[list[float]]:
    """Every row of weights of a classifier: its bias, its numerical rows, each categorical value's row."""
    return [classifier.bias, *classifier.numerical.values(), *(row for t in classifier.categorical.values() for row in t)]


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
    """Where the simplified classifier is not proved to score as the full one on every input."""
    mine, theirs = simplified.classifier, full.classifier
    points = isinstance(mine, Classifier) and all(float(w).is_integer() for row in _rows(mine) for w in row)
    if not isinstance(mine, Classifier) or not isinstance(theirs, Classifier) or (points and mine != theirs):
        return ["classifier: given as points or rules, which this proof does not cover"]
    if mine.pooled != theirs.pooled or any(theirs.categorical.get(name) != table for name, table in mine.categorical.items()) or \
            any(theirs.numerical.get(name) != row for name, row in mine.numerical.items()):
        return ["classifier: its weights are not the full program's"]
    if mine.bias == theirs.bias and mine.categorical.keys() == theirs.categorical.keys() \
            and mine.numerical.keys() == theirs.numerical.keys():
        return []
    bias = [Fraction(weight) for weight in theirs.bias]
    for name in [*theirs.categorical, *theirs.numerical]:
        if name in mine.categorical or name in mine.numerical:
            continue
        value = _constant(parts.at[name])
        if value is None:
            return [f"classifier: no longer reads {name}, which is not proved constant"]
        row = theirs.categorical[name][value] if name in theirs.categorical else \
            [weight * value for weight in theirs.numerical[name]]
        bias = [total + Fraction(add) for total, add in zip(bias, row)]
    domains = {name: sorted(set().union(*at)) for name, at in parts.at.items()}
    if bias != [Fraction(weight) for weight in mine.bias] or not exact_sums(theirs, domains):
        return ["classifier: its bias is not proved to hold the rows of the constants it no longer reads"]
    return []
