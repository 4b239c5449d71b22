"""Program -> a shorter program with the same prediction on every input it is defined on.

A pipeline of small IR-to-IR passes, each checked against the program it started from:
reachable values (exact, by running every input of a listable input space, or a sound
superset), constants folded into their readers, the classifier as rules over the few variables
that decide it, and dead parts removed. Printing the closed forms this leaves (`k == q - 1`, a
threshold of a count) is the code generator's job.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, replace
from itertools import product

import numpy as np

from ..tasks.base import InputSpace
from .codegen import generate
from .interpret import classify, joint_keys, run_batch
from .ir import (
    CategoricalAttention,
    CategoricalMLP,
    Classifier,
    NumericalAttention,
    NumericalMLP,
    Program,
    Rules,
    classifier_reads,
    component_reads,
    live_variables,
    value_domains,
)

CHUNK = 8192  # inputs per interpreter call
MAX_RULE_STATES = 250_000  # joint values of the classifier's reads a rules table may be computed from


class SimplifyError(AssertionError):
    """A pass changed a prediction: a bug, reported with the pass and an input that shows it."""


def encode_space(program: Program, space: InputSpace) -> np.ndarray:
    """Every input of `space` as a right-padded (N, T) id array, shortest first."""
    index = {token: i for i, token in enumerate(program.input_vocab)}
    sequences = list(space.sequences())
    ids = np.zeros((len(sequences), max(map(len, sequences))), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = [index[token] for token in sequence]
    return ids


def predictions(program: Program, inputs: np.ndarray) -> np.ndarray:
    """Label ids (N, T) of the interpreter on every input, 0 at padding."""
    out = np.zeros(inputs.shape, dtype=np.int64)
    for start in range(0, len(inputs), CHUNK):
        chunk = inputs[start : start + CHUNK]
        out[start : start + CHUNK] = np.where(chunk != 0, run_batch(program, chunk)[0], 0)
    return out


def _traces(program: Program, inputs: np.ndarray):
    """(valid mask, trace) of the interpreter per chunk of inputs."""
    for start in range(0, len(inputs), CHUNK):
        chunk = inputs[start : start + CHUNK]
        yield chunk != 0, run_batch(program, chunk)[1]


def reachable_values(program: Program, inputs: np.ndarray) -> dict[str, list[int]]:
    """Every value each variable takes at a real position of some input: exact on those inputs."""
    seen: dict[str, set[int]] = {variable.name: set() for variable in program.variables}
    for valid, trace in _traces(program, inputs):
        for name, values in trace.items():
            seen[name].update(np.unique(values[valid]).tolist())
    return {name: sorted(values) for name, values in seen.items()}


def with_values(program: Program, inputs: np.ndarray | None) -> Program:
    """Pass 1: each variable's reachable values, exact on `inputs` (then the program's input
    space), else left to value_domains' sound superset."""
    if inputs is None:
        return program
    values = reachable_values(program, inputs)
    return replace(program, variables=[replace(v, values=values[v.name]) for v in program.variables])


def _single_values(program: Program) -> dict[str, int]:
    """The variables that take one value at every real position, with that value."""
    return {name: values[0] for name, values in value_domains(program).items() if len(values) == 1}


def _fold_reader(component, constants: dict[str, int]) -> None:
    """Rewrite a component that reads a constant so that it no longer does (where it can)."""
    if isinstance(component, (CategoricalAttention, NumericalAttention)):
        if component.query in constants and component.key not in constants:
            target = component.predicate[constants[component.query]]  # every query looks for this key
            component.query, component.predicate = component.key, [target] * len(component.predicate)
    elif isinstance(component, CategoricalMLP) and component.first != component.second:
        table = component.table
        if component.first in constants and component.second not in constants:
            row = table[constants[component.first]]
            component.table = [list(row) for _ in table]  # table[a][b] = old[c][b]: reads only b
            component.first = component.second
        elif component.second in constants and component.first not in constants:
            column = constants[component.second]
            component.table = [[row[column]] * len(row) for row in table]  # table[a][b] = old[a][c]
            component.second = component.first


def fold_constants(program: Program) -> Program:
    """Pass 2: a part whose output takes one value becomes that constant, and the parts that
    read a constant read something else instead (an attention query, an MLP input)."""
    program = copy.deepcopy(program)
    while True:
        constants = _single_values(program)
        folded = False
        for layer in program.layers:
            for group in (layer.attention, layer.numerical_attention, layer.mlps, layer.numerical_mlps):
                for component in [c for c in group if c.name in constants]:
                    group.remove(component)
                    program.variable(component.name).constant = constants[component.name]
                    folded = True
                for component in group:
                    before = copy.deepcopy(component)
                    _fold_reader(component, constants)
                    folded |= component != before
        if not folded:
            return program


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
        rows = set()
        for valid, trace in _traces(program, inputs):
            stacked = np.stack([trace[name][valid] for name in names], axis=1)  # (positions, names)
            rows.update(map(tuple, np.unique(stacked, axis=0).tolist()))
        values = np.array(sorted(rows), dtype=np.int64)
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


def _state_trace(program: Program, states: _States) -> dict[str, np.ndarray]:
    """A trace of one position per joint value: the states' columns, every other variable at its
    first value (those the classifier reads then have only that one)."""
    domains = value_domains(program)
    trace = {v.name: np.full((len(states.values), 1), domains[v.name][0]) for v in program.variables}
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


def _rules(program: Program, inputs: np.ndarray | None, candidates: list[str]) -> Rules | None:
    """Rules over the fewest of `candidates` that decide the classifier's label (None: they do
    not, or there are too many joint values)."""
    states = _joint_states(program, inputs, candidates)
    if states is None:
        return None
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


def _lines(program: Program) -> int:
    return generate(remove_dead(program)).count("\n")


def as_rules(program: Program, inputs: np.ndarray | None) -> Program:
    """Pass 3: the classifier as a table over the fewest variables that decide its label, from
    its exact scores on every joint value they take; unchanged where there are too many.

    Where every input is listed, a read that a table computes from other variables (an MLP) is
    also tried in place of those variables, and kept so where the program prints shorter: the
    table then absorbs the MLP.
    """
    if isinstance(program.classifier, Rules) or program.classifier.pooled:  # pooled: not a per-position rule
        return program
    rules = _rules(program, inputs, classifier_reads(program))
    if rules is None:
        return program
    best = replace(program, classifier=rules)
    producers = {c.name: c for layer in program.layers for c in layer.components()
                 if isinstance(c, (CategoricalMLP, NumericalMLP))}
    improved = inputs is not None
    while improved:
        improved = False
        for read in [name for name in best.classifier.reads if name in producers]:
            others = [name for name in best.classifier.reads if name != read]
            trial = _rules(program, inputs, [*others, *component_reads(producers[read])])
            if trial is not None and _lines(replace(program, classifier=trial)) < _lines(best):
                best, improved = replace(program, classifier=trial), True
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
    )


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


def one_input_function(program: Program, component, domains: dict[str, list[int]]) -> tuple[str, dict] | None:
    """(source, {source value: output}) where a table's output depends on one variable only."""
    if isinstance(component, NumericalMLP):
        last = len(component.table) - 1
        return component.source, {x: component.table[min(x, last)] for x in domains[component.source]}
    if not isinstance(component, CategoricalMLP):
        return None
    if component.first == component.second:
        return component.first, {x: component.table[x][x] for x in domains[component.first]}
    for source, position in ((component.first, 0), (component.second, 1)):
        outputs: dict[int, set[int]] = {}
        for a in domains[component.first]:
            for b in domains[component.second]:
                outputs.setdefault((a, b)[position], set()).add(component.table[a][b])
        if all(len(values) == 1 for values in outputs.values()):
            return source, {x: values.pop() for x, values in outputs.items()}
    return None


def _absorbed(program: Program, classifier: Classifier) -> Classifier:
    """Integer points with each read that a table computes from one other variable folded into
    that variable's points (exact: integer sums), so the table need not be computed at all."""
    domains = value_domains(program)
    producers = {c.name: c for layer in program.layers for c in layer.components()}
    size = len(classifier.bias)
    for name in classifier_reads(replace(program, classifier=classifier)):
        found = one_input_function(program, producers[name], domains) if name in producers else None
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


def as_points(program: Program, inputs: np.ndarray | None) -> Program:
    """Pass 3: where every joint value the classifier's reads take is known (every input listed,
    or few enough values), drop each read that never changes its label, then write its weights as
    the smallest integer points that give every joint value the same label, so that the sum no
    longer depends on its order; constant reads go into the bias. Unchanged elsewhere."""
    if isinstance(program.classifier, Rules) or program.classifier.pooled:
        return program
    states = _joint_states(program, inputs, [])
    if states is None:
        return program
    trace = _state_trace(program, states)

    def same(classifier: Classifier) -> bool:
        return bool(np.array_equal(classify(replace(program, classifier=classifier), trace)[:, 0], states.labels))

    classifier = program.classifier
    domains = value_domains(program)
    for name in sorted(classifier_reads(program), key=lambda n: -len(domains[n])):  # widest first
        if same(_without(classifier, name)):
            classifier = _without(classifier, name)
    for scale in POINT_SCALES:
        if same(_rounded(classifier, scale)):
            points = _rounded(classifier, scale)
            constants = {n: domains[n][0] for n in classifier_reads(replace(program, classifier=points))
                         if len(domains[n]) == 1}
            classifier = _absorbed(program, _folded(points, constants))
            break
    return replace(program, classifier=classifier)


def remove_dead(program: Program) -> Program:
    """Pass 4: drop every part and constant that neither the classifier nor a kept part reads."""
    program = copy.deepcopy(program)
    needed = {"tokens", "positions", "ones", *live_variables(program)}
    for layer in program.layers:
        for group in (layer.attention, layer.numerical_attention, layer.mlps, layer.numerical_mlps):
            group[:] = [component for component in group if component.name in needed]
    program.embeddings = [embedding for embedding in program.embeddings if embedding.name in needed]
    program.layers = [layer for layer in program.layers if layer.components()]
    program.variables = [variable for variable in program.variables if variable.name in needed]
    return program


def simplify(program: Program, space: InputSpace | None = None, checks: np.ndarray | None = None) -> Program:
    """The simplified program, equal to `program` on every input of `space` (and defined only
    there) or, without a space, on every input.

    Each pass is checked on the inputs of `space`, or on `checks` (id rows) without one: a pass
    that changes a prediction raises SimplifyError naming it and an input. The classifier stays
    weights where its rules would print longer.
    """
    inputs = encode_space(program, space) if space is not None else None
    checks = inputs if inputs is not None else checks
    expected = predictions(program, checks) if checks is not None else None
    passes = [
        ("reachable values", lambda p: with_values(replace(p, input_space=space), inputs)),
        ("fold constants", fold_constants),
        ("remove dead parts", remove_dead),
        ("classifier as points", lambda p: as_points(p, inputs)),
        ("remove dead parts after points", remove_dead),
        ("classifier as rules", lambda p: as_rules(p, inputs)),
        ("remove dead parts after rules", remove_dead),
    ]
    current, weighted = program, None
    for name, function in passes:
        current = function(current)
        if expected is not None:
            _check(name, current, checks, expected)
        if name == "remove dead parts after points":
            weighted = current
    return min((current, weighted), key=lambda p: generate(p).count("\n"))


def _check(name: str, program: Program, inputs: np.ndarray, expected: np.ndarray) -> None:
    """SimplifyError unless `program` predicts `expected` on every input."""
    got = predictions(program, inputs)
    wrong = np.flatnonzero((got != expected).any(1))
    if len(wrong):
        tokens = [program.input_vocab[i] for i in inputs[wrong[0]] if i != 0]
        raise SimplifyError(f"simplify pass {name!r} changed the prediction on {tokens} ({len(wrong)} inputs)")
