"""The classifier's shorter forms, from its exact scores on every joint value its reads can take:
integer points (the smallest scale that keeps every label, reads that never change it dropped,
one-input tables folded into their source's points) or rules (a table over the few variables
that decide the label). Passes of `simplify`."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import product

import numpy as np

from .domains import one_input_function, position_domains, value_domains, values_anywhere
from .fit_points import PointFitter
from .interpret import classify, joint_keys, label_scores, read_rows, traces
from .ir import (
    CategoricalMLP,
    Classifier,
    NumericalMLP,
    Program,
    Rules,
    classifier_reads,
    component_reads,
)

MAX_RULE_STATES = 250_000  # joint values of the classifier's reads a rules table may be computed from


@dataclass
class _States:
    """Joint values of some variables, one row each, with the label the classifier gives them."""

    names: list[str]
    values: np.ndarray  # (S, len(names))
    labels: np.ndarray  # (S,)


def _joint_states(program: Program, inputs: np.ndarray | None, extra: list[str]) -> _States | None:
    """Every joint value that the classifier's non-constant reads and the `extra` variables take
    (on `inputs`, or without them the product of the reads' domains), labelled by the classifier;
    None where there are too many."""
    domains = value_domains(program)
    reads = [name for name in classifier_reads(program) if len(domains[name]) > 1]
    names = [v.name for v in program.variables if v.name in reads or v.name in extra]
    if not names:
        values = np.zeros((1, 0), dtype=np.int64)
    elif inputs is not None:
        values = _seen_rows(program, inputs, names, [max(domains[name]) + 1 for name in names])
    elif names == reads:
        size = int(np.prod([len(domains[name]) for name in names], dtype=np.float64))
        if size > MAX_RULE_STATES:
            return None
        values = np.array(list(product(*(domains[name] for name in names))), dtype=np.int64).reshape(size, len(names))
    else:
        return None
    states = _States(names, values, np.zeros(len(values), dtype=np.int64))
    states.labels = classify(program, _state_trace(program, states))[:, 0]
    return states


def _seen_rows(program: Program, inputs: np.ndarray, names: list[str], radices: list[int]) -> np.ndarray:
    """The distinct joint values (S, len(names)) of `names` at the real positions of `inputs`,
    sorted; each row kept as one mixed-radix integer while they are gathered, where that fits."""
    if math.prod(radices) >= 2**62:  # too wide for one integer: compare whole rows (slower)
        rows = set()
        for valid, trace in traces(program, inputs):
            stacked = np.stack([trace[name][valid] for name in names], axis=1)  # (positions, names)
            rows.update(map(tuple, np.unique(stacked, axis=0).tolist()))
        return np.array(sorted(rows), dtype=np.int64).reshape(len(rows), len(names))
    keys = np.unique(np.concatenate([joint_keys([trace[name][valid] for name in names], radices)
                                     for valid, trace in traces(program, inputs)] or [np.zeros(0, np.int64)]))  # (S,)
    values = np.empty((len(keys), len(names)), dtype=np.int64)
    for column in reversed(range(len(names))):
        keys, values[:, column] = np.divmod(keys, radices[column])
    return values


def _state_trace(program: Program, states: _States) -> dict[str, np.ndarray]:
    """A trace of one real position per joint value: the states' columns, every other variable at
    its first value (those the classifier reads then have only that one). A program without a
    `tokens` variable still gets token ids, all real (not padding)."""
    domains = value_domains(program)
    trace = {"tokens": np.ones((len(states.values), 1), dtype=np.int64)}
    trace.update({v.name: np.full((len(states.values), 1), domains[v.name][0]) for v in program.variables})
    for column, name in enumerate(states.names):
        trace[name] = states.values[:, column : column + 1]
    return trace


def _decides(values: np.ndarray, labels: np.ndarray) -> bool:
    """Whether the label is a function of the rows of `values` (equal rows, equal labels)."""
    if values.shape[1] == 0:
        return bool((labels == labels[0]).all())
    radices = [int(column.max()) + 1 for column in values.T]
    keys = joint_keys(list(values.T), radices)
    order = np.lexsort((labels, keys))
    keys, labels = keys[order], labels[order]
    same = keys[1:] == keys[:-1]
    return bool((labels[1:][same] == labels[:-1][same]).all())


def _rules(states: _States, candidates: list[str]) -> Rules | None:
    """Rules over the fewest of `candidates` that decide the classifier's label on the joint
    values `states` (None: they do not)."""
    keep = [n for n, name in enumerate(states.names) if name in candidates]
    if not _decides(states.values[:, keep], states.labels):
        return None
    for column in sorted(keep, key=lambda n: -len(np.unique(states.values[:, n]))):  # widest first
        trial = [n for n in keep if n != column]
        if _decides(states.values[:, trial], states.labels):
            keep = trial
    projected = np.unique(np.column_stack([states.values[:, keep], states.labels]), axis=0)
    default = Counter(projected[:, -1].tolist()).most_common(1)[0][0]
    table = [row for row in projected.tolist() if row[-1] != default]
    return Rules(reads=[states.names[n] for n in keep], table=table, default=int(default))


def as_rules(program: Program, inputs: np.ndarray | None, length: Callable[[Program], int]) -> Program:
    """Pass: the classifier as a table over the fewest variables that decide its label, from
    its exact scores on every joint value they take; unchanged where there are too many.

    Where every input is listed, a read that a table computes from other variables (an MLP) is
    also tried in place of those variables, and kept so where the program is shorter by
    `length`: the table then absorbs the MLP. The joint values are gathered once, over the reads
    and the inputs of every MLP they lead to through MLPs (a projection of them is what fewer
    variables take).
    """
    if isinstance(program.classifier, Rules) or program.classifier.pooled:  # pooled: not a per-position rule
        return program
    producers = {c.name: c for layer in program.layers for c in layer.components()
                 if isinstance(c, (CategoricalMLP, NumericalMLP))}
    reads = classifier_reads(program)
    sources, frontier = set(), [name for name in reads if name in producers]
    while frontier:  # an absorbed MLP's inputs may be MLPs in turn
        for source in component_reads(producers[frontier.pop()]):
            if source not in sources:
                sources.add(source)
                frontier += [source] if source in producers else []
    states = _joint_states(program, inputs, [*reads, *sorted(sources)] if inputs is not None else reads)
    rules = None if states is None else _rules(states, reads)
    if rules is None:
        return program
    best = replace(program, classifier=rules)
    best_length = length(best)
    improved = inputs is not None
    while improved:
        improved = False
        for read in [name for name in best.classifier.reads if name in producers]:
            others = [name for name in best.classifier.reads if name != read]
            trial = _rules(states, [*others, *component_reads(producers[read])])
            if trial is not None and length(replace(program, classifier=trial)) < best_length:
                best, improved = replace(program, classifier=trial), True
                best_length = length(best)
                break
    return best


POINT_SCALES = (1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000, 10_000)


def _without(classifier: Classifier, name: str) -> Classifier:
    """The classifier with one variable no longer read."""
    return Classifier(
        bias=classifier.bias,
        categorical={k: v for k, v in classifier.categorical.items() if k != name},
        numerical={k: v for k, v in classifier.numerical.items() if k != name},
    )


def _rounded(classifier: Classifier, scale: float) -> Classifier:
    """Every weight times `scale`, rounded to an integer."""
    def points(row: list[float]) -> list[float]:
        return [float(round(weight * scale)) for weight in row]

    return Classifier(
        bias=points(classifier.bias),
        categorical={name: [points(row) for row in table] for name, table in classifier.categorical.items()},
        numerical={name: points(row) for name, row in classifier.numerical.items()},
        pooled=classifier.pooled,
    )


def scaled_to_integers(classifier: Classifier) -> Classifier:
    """The classifier times the power of two that makes every weight an integer, where one does
    (`_grid_scale`): every score is then that power of two times the old one, exactly in floating
    point too, so every label (ties included) stays. Unchanged where none does."""
    scale = _grid_scale(classifier)
    return _rounded(classifier, scale[0]) if scale else classifier


def _folded(classifier: Classifier, constants: dict[str, int]) -> Classifier:
    """Integer points with the rows of constant variables added into the bias (exact in integers)."""
    bias = list(classifier.bias)
    for name, value in constants.items():
        row = classifier.categorical[name][value] if name in classifier.categorical else [
            weight * value for weight in classifier.numerical.get(name, [0.0] * len(bias))]
        bias = [b + r for b, r in zip(bias, row)]
    folded = Classifier(bias, dict(classifier.categorical), dict(classifier.numerical))
    for name in constants:
        folded = _without(folded, name)
    return folded


MAX_ABSORBED_VALUES = 64  # a count becomes a table of points per value only up to this many values


def _absorbed(program: Program, classifier: Classifier) -> Classifier:
    """Integer points with each read that a table computes from one other variable folded into
    that variable's points (exact: integer sums), so the table need not be computed at all."""
    at = position_domains(program)
    domains = values_anywhere(at)
    producers = {c.name: c for layer in program.layers for c in layer.components()}
    size = len(classifier.bias)
    for name in classifier_reads(replace(program, classifier=classifier)):
        found = one_input_function(producers[name], at) if name in producers else None
        if found is None or len(domains[found[0]]) > MAX_ABSORBED_VALUES:
            continue
        source, function = found
        points = classifier.categorical[name]  # a table's output is categorical
        rows = max(max(domains[source]) + 1, len(classifier.categorical.get(source, [])))
        table = [list(row) for row in classifier.categorical.get(source, [[0.0] * size] * rows)]
        table += [[0.0] * size for _ in range(rows - len(table))]
        linear = classifier.numerical.get(source)
        for x in domains[source]:
            own = [weight * x for weight in linear] if linear else table[x]
            table[x] = [a + b for a, b in zip(own, points[function[x]])]
        categorical = {k: v for k, v in classifier.categorical.items() if k != name}
        categorical[source] = table
        numerical = {k: v for k, v in classifier.numerical.items() if k not in (name, source)}
        classifier = Classifier(classifier.bias, categorical, numerical)
    return classifier


def as_points(program: Program, inputs: np.ndarray | None, length: Callable[[Program], int]) -> Program:
    """Pass: where every joint value the classifier's reads take is known (every input listed,
    or few enough values), write the classifier as integer points that give every joint value the
    same label, so that the sum no longer depends on its order: the shorter by `length` of the
    model's weights rounded at the smallest scale that works (after dropping each read that never
    changes the label) and points refitted (`_refitted_points`); constant reads go into the bias.
    Elsewhere, a classifier trained on a power-of-two step (--classifier-step) is scaled to
    integers, which changes no score but by that power of two, exactly; other ones are unchanged."""
    if isinstance(program.classifier, Rules):
        return program
    if program.classifier.pooled:
        return replace(program, classifier=scaled_to_integers(program.classifier))
    domains = value_domains(program)
    sources = _table_sources(program) if inputs is not None else {}
    states = _joint_states(program, inputs, sorted(set(sources.values())))
    if states is None:
        return replace(program, classifier=scaled_to_integers(program.classifier))
    check = _LabelCheck(program, _state_trace(program, states), states.labels)
    candidates = [c for c in (_rounded_points(program, check), _refitted_points(program, states, sources, check.same))
                  if c is not None]
    finished = []
    for points in candidates:
        constants = {n: domains[n][0] for n in classifier_reads(replace(program, classifier=points)) if len(domains[n]) == 1}
        finished.append(replace(program, classifier=_absorbed(program, _folded(points, constants))))
    return min(finished, key=length, default=program)


class _LabelCheck:
    """Whether a classifier gives every joint value of the reads (one row of `trace` each) the
    label the program's own classifier gives it; for one read fewer, a quick bound first."""

    def __init__(self, program: Program, trace: dict[str, np.ndarray], labels: np.ndarray):
        self.program, self.trace, self.labels = program, trace, labels
        self.scored: tuple[Classifier, np.ndarray, np.ndarray] | None = None  # a classifier, its scores and their magnitudes

    def same(self, classifier: Classifier) -> bool:
        """Exactly: the program's own arithmetic on every joint value."""
        return bool(np.array_equal(classify(replace(self.program, classifier=classifier), self.trace)[:, 0], self.labels))

    def same_without(self, classifier: Classifier, name: str) -> bool:
        """`same` for the classifier no longer reading `name`, turned down at once where
        `provably_changed` says so."""
        return not self.provably_changed(classifier, name) and self.same(_without(classifier, name))

    def provably_changed(self, classifier: Classifier, name: str) -> bool:
        """Whether the classifier's full scores less the rows of `name` change some label by more
        than rounding can: either sum of at most n terms lies within n * eps of the terms'
        magnitudes of the real sum, so a margin past twice that (with room to spare) is a
        changed label in exact arithmetic too. False says nothing."""
        if self.scored is None or self.scored[0] is not classifier:
            scores, magnitudes = label_scores(replace(self.program, classifier=classifier), self.trace, magnitudes=True)
            self.scored = (classifier, scores[:, 0, 1:], magnitudes[:, 0, 1:])  # (S, L - 1) each: label 0 is never chosen
        _, scores, magnitudes = self.scored
        values = np.where(self.trace["tokens"] != 0, self.trace[name], 0)[:, 0]  # (S,): as `classify` reads them
        without = scores - read_rows(classifier, name, values)[:, 1:]  # (S, L - 1)
        slack = 4 * (len(classifier.categorical) + len(classifier.numerical) + 3) * np.finfo(np.float64).eps * magnitudes
        own = (self.labels - 1)[:, None]  # (S, 1): the label each joint value must keep
        kept = np.take_along_axis(without + slack, own, axis=1)  # (S, 1): its best case
        return bool(((without - slack) > kept).any())


def _rounded_points(program: Program, check: _LabelCheck) -> Classifier | None:
    """The model's weights without the reads that never change the label, rounded to integers at
    the smallest of POINT_SCALES that keeps every label (None: none does)."""
    classifier = program.classifier
    domains = value_domains(program)
    for name in sorted(classifier_reads(program), key=lambda n: -len(domains[n])):  # widest first
        if check.same_without(classifier, name):
            classifier = _without(classifier, name)
    scales = sorted({*POINT_SCALES, *_grid_scale(classifier)})
    return next((_rounded(classifier, scale) for scale in scales if check.same(_rounded(classifier, scale))), None)


MAX_GRID_SCALE = 2**8  # the finest step of `--classifier-step` (model/points.py)


def _grid_scale(classifier: Classifier) -> list[int]:
    """[2^k], the smallest power of two up to MAX_GRID_SCALE that makes every weight an integer (a
    classifier trained with --classifier-step 2^-k), or [] where none does."""
    weights = np.array([*classifier.bias, *(w for table in classifier.categorical.values() for row in table for w in row),
                        *(w for row in classifier.numerical.values() for w in row)], dtype=np.float64)
    scale = 1
    while scale <= MAX_GRID_SCALE:
        if np.array_equal(weights * scale, np.round(weights * scale)):
            return [scale]
        scale *= 2
    return []


def _table_sources(program: Program) -> dict[str, str]:
    """{read: source} for each classifier read that a table computes from one other variable of
    at most MAX_ABSORBED_VALUES values: points may be given to the source's values instead."""
    at = position_domains(program)
    domains = values_anywhere(at)
    producers = {c.name: c for layer in program.layers for c in layer.components()}
    sources = {}
    for name in classifier_reads(program):
        found = one_input_function(producers[name], at) if name in producers else None
        if found is not None and len(domains[found[0]]) <= MAX_ABSORBED_VALUES and len(domains[found[0]]) > 1:
            sources[name] = found[0]
    return sources


def point_rows(program: Program, domains: dict[str, list[int]]) -> dict[str, int]:
    """The size of each variable's table of points: every value it may take (`domains`), and
    every count up to its bound or every categorical value."""
    return {v.name: max(domains[v.name][-1] + 1, (v.bound or 0) + 1 if v.numerical else program.d) for v in program.variables}


def _refitted_points(program: Program, states: _States, sources: dict[str, str],
                     same: Callable[[Classifier], bool]) -> Classifier | None:
    """Points refitted on the joint values (fit_points), each table's read replaced by its source,
    then refitted without each read in turn (widest first) and with each count read as a number
    (one weight per label) rather than a row per value, wherever every label stays; None where no
    fit keeps them."""
    domains = value_domains(program)
    numbers = {v.name for v in program.variables if v.numerical}
    read = set(classifier_reads(program))
    reads = [name for name in states.names if name in read]
    reads = list(dict.fromkeys(sources.get(name, name) for name in reads))
    linear = {name for name in reads if name in program.classifier.numerical and name not in sources.values()}
    rows = point_rows(program, domains)
    fitter = PointFitter(states.names, states.values, states.labels, len(program.classifier.bias), rows, same)
    if not fitter.feasible(reads, linear):
        return None
    for name in sorted(reads, key=lambda n: -len(domains[n])):
        if fitter.feasible([n for n in reads if n != name], linear - {name}):
            reads, linear = [n for n in reads if n != name], linear - {name}
    for name in [n for n in reads if n in numbers and n not in linear]:
        if fitter.feasible(reads, linear | {name}):
            linear = linear | {name}
    return fitter.points(reads, linear)
