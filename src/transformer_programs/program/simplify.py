"""Program -> a shorter program with the same prediction on every input it is defined on.

A pipeline of small IR-to-IR passes, checked against the program it started from (the result
on every input; each pass in turn, to name the one at fault, only when the result is wrong):
reachable values (exact, by running every input of a listable input space, or a sound
superset), constants folded into their readers and into the classifier's bias, duplicate parts
merged, dead parts removed, and the classifier's shorter forms (classifier_forms: integer
points, or rules over the few variables that decide it).
Printing the closed forms this leaves (`k == q - 1`, a threshold of a count) is the code
generator's job.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from fractions import Fraction

import numpy as np

from ..progress import Progress
from ..tasks.base import InputSpace
from .classifier_forms import as_points, as_rules
from .codegen import generate
from .domains import pairs_anywhere, position_domains, seen_target, value_domains, values_anywhere
from .interpret import CHUNK, run_batch, traces
from .ir import (
    CategoricalAttention,
    CategoricalMLP,
    Classifier,
    NumericalAttention,
    Program,
    Rules,
    classifier_reads,
    live_variables,
)


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


def reachable_values(program: Program, inputs: np.ndarray) -> dict[str, list[int]]:
    """Every value each variable takes at a real position of some input: exact on those inputs.
    (The trace also holds the token ids, which a program without a `tokens` variable never reads.)"""
    seen: dict[str, set[int]] = {variable.name: set() for variable in program.variables}
    for valid, trace in traces(program, inputs):
        for name in seen:
            seen[name].update(np.unique(trace[name][valid]).tolist())
    return {name: sorted(values) for name, values in seen.items()}


def with_values(program: Program, inputs: np.ndarray | None) -> Program:
    """Pass: each variable's reachable values, exact on `inputs` (then the program's input
    space), else left to value_domains' sound superset."""
    if inputs is None:
        return program
    values = reachable_values(program, inputs)
    return replace(program, variables=[replace(v, values=values[v.name]) for v in program.variables])


def _single_values(domains: dict[str, list[int]]) -> dict[str, int]:
    """The variables whose domain (`value_domains`) is one value, with that value."""
    return {name: values[0] for name, values in domains.items() if len(values) == 1}


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
    """Pass: a part whose output takes one value becomes that constant, and the parts that
    read a constant read something else instead (an attention query, an MLP input)."""
    program = copy.deepcopy(program)
    while True:
        constants = _single_values(value_domains(program))
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


def exact_sums(classifier: Classifier, domains: dict[str, list[int]]) -> bool:
    """Whether every score sum of the classifier is exact in float64, so that the order of its
    additions cannot change a score: every term is a multiple of the finest power of two among
    the weights, and no sum can reach 2**53 of those."""
    tables = classifier.categorical
    weights = [classifier.bias, *classifier.numerical.values(), *(row for table in tables.values() for row in table)]
    finest = max(Fraction(float(w)).denominator for row in weights for w in row)  # each weight: k / finest
    largest = max(map(abs, classifier.bias))  # bounds |every partial sum|
    largest += sum(max(map(abs, row)) * max(domains[name]) for name, row in classifier.numerical.items())
    largest += sum(max(abs(w) for v in domains[name] for w in table[v]) for name, table in tables.items())
    return largest * finest < 2**53


def fold_constant_reads(program: Program) -> Program:
    """Pass: a variable the classifier reads that takes one value adds the same row to every
    score, so that row joins the bias and the classifier no longer reads it. Only where every
    score sum is exact (`exact_sums`), so the bias's sums come first without changing a score,
    and only where the program gets shorter (a float64 bias is longer to write)."""
    classifier = program.classifier
    if not isinstance(classifier, Classifier) or classifier.pooled:
        return program
    domains = value_domains(program)
    read = set(classifier_reads(program))
    constants = {name: value for name, value in _single_values(domains).items() if name in read}
    if not constants or not exact_sums(classifier, domains):
        return program
    folded = copy.deepcopy(program)
    classifier = folded.classifier
    for name, value in constants.items():
        if name in classifier.numerical:
            row = [weight * value for weight in classifier.numerical.pop(name)]
        else:
            row = classifier.categorical.pop(name)[value]
        classifier.bias = [score + add for score, add in zip(classifier.bias, row)]
    return folded if lines(folded) < lines(program) else program


def _renamed(component, names: dict[str, str]):
    """A copy of `component` reading names[v] wherever it read v."""
    fields = {"query", "key", "value", "first", "second", "source"}
    changes = {f: names.get(getattr(component, f), getattr(component, f)) for f in fields if hasattr(component, f)}
    return replace(component, **changes)


def _behaviour(component, at: dict[str, list[frozenset[int]]], domains: dict[str, list[int]]) -> tuple:
    """What a part computes on the values its inputs can take: equal for parts that always agree."""
    kind = type(component).__name__
    if isinstance(component, (CategoricalAttention, NumericalAttention)):
        seen = seen_target(component, at)
        targets = tuple(seen(q, component.predicate[q]) for q in domains[component.query])
        return kind, component.query, component.key, component.value, component.causal, targets
    if isinstance(component, CategoricalMLP):
        pairs = tuple(component.table[a][b] for a, b in pairs_anywhere(at, component.first, component.second))
        return kind, component.first, component.second, pairs
    last = len(component.table) - 1
    return kind, component.source, tuple(component.table[min(x, last)] for x in domains[component.source])


def merge_duplicates(program: Program) -> Program:
    """Pass: a part that computes exactly what an earlier part computes (same kind and inputs, the
    same outputs on every value its inputs can take) is read through the earlier one instead, so
    only the classifier may still read it."""
    program = copy.deepcopy(program)
    at = position_domains(program)
    domains = values_anywhere(at)
    names: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for layer in program.layers:
        for group in (layer.attention, layer.numerical_attention, layer.mlps, layer.numerical_mlps):
            for n, component in enumerate(group):
                component = group[n] = _renamed(component, names)
                key = _behaviour(component, at, domains)
                if key in seen:
                    names[component.name] = seen[key]
                else:
                    seen[key] = component.name
    program.classifier = read_through(program.classifier, names)
    return program


def read_through(classifier: Classifier | Rules, names: dict[str, str]) -> Classifier | Rules:
    """The classifier reading each duplicate through its original where that is exact: rules
    (the two columns always agree) and integer points (their rows add exactly), not float weights."""
    if isinstance(classifier, Rules):
        keep = [n for n, name in enumerate(classifier.reads) if names.get(name, name) not in
                [names.get(other, other) for other in classifier.reads[:n]]]
        reads = [names.get(classifier.reads[n], classifier.reads[n]) for n in keep]
        table = [[row[n] for n in keep] + [row[-1]] for row in classifier.table]
        return Rules(reads, table, classifier.default)
    weights = [w for row in (classifier.bias, *classifier.numerical.values()) for w in row]
    weights += [w for table in classifier.categorical.values() for row in table for w in row]
    if not all(float(w).is_integer() for w in weights):
        return classifier
    categorical: dict[str, list[list[float]]] = {}
    for name, table in classifier.categorical.items():
        target = names.get(name, name)
        old = categorical.get(target)
        categorical[target] = table if old is None else [[a + b for a, b in zip(r, s)] for r, s in zip(old, table)]
    numerical: dict[str, list[float]] = {}
    for name, row in classifier.numerical.items():
        target = names.get(name, name)
        if target in categorical:  # read as a table of points per value: add weight * value to each row
            categorical[target] = [[a + w * x for a, w in zip(points, row)] for x, points in enumerate(categorical[target])]
            continue
        old = numerical.get(target)
        numerical[target] = row if old is None else [a + b for a, b in zip(old, row)]
    for name in [n for n in numerical if n in categorical]:
        row = numerical.pop(name)
        categorical[name] = [[a + w * x for a, w in zip(points, row)] for x, points in enumerate(categorical[name])]
    return Classifier(classifier.bias, categorical, numerical, classifier.pooled)


def remove_dead(program: Program) -> Program:
    """Pass: drop every part and constant that neither the classifier nor a kept part reads."""
    program = copy.deepcopy(program)
    needed = {"tokens", "positions", "ones", *live_variables(program)}
    for layer in program.layers:
        for group in (layer.attention, layer.numerical_attention, layer.mlps, layer.numerical_mlps):
            group[:] = [component for component in group if component.name in needed]
    program.embeddings = [embedding for embedding in program.embeddings if embedding.name in needed]
    program.layers = [layer for layer in program.layers if layer.components()]
    program.variables = [variable for variable in program.variables if variable.name in needed]
    return program


def simplify(program: Program, space: InputSpace | None = None, checks: np.ndarray | None = None,
             quiet: bool = True) -> Program:
    """The simplified program, equal to `program` on every input of `space` (and defined only
    there) or, without a space, on every input.

    The result is checked on the inputs of `space`, or on `checks` (id rows) without one; when it
    changes a prediction, the passes are checked in turn and SimplifyError names the first that
    does, with an input. The classifier stays weights where its rules would print longer.
    Progress (pass by pass) is shown unless `quiet`.
    """
    inputs = encode_space(program, space) if space is not None else None
    checks = inputs if inputs is not None else checks
    expected = predictions(program, checks) if checks is not None else None
    passes = [
        ("reachable values", lambda p: with_values(replace(p, input_space=space), inputs)),
        ("fold constants", fold_constants),
        ("merge duplicate parts", merge_duplicates),
        ("remove dead parts", remove_dead),
        ("classifier as points", lambda p: as_points(p, inputs, lines)),
        ("constant reads into the bias", fold_constant_reads),
        ("merge duplicate parts after points", merge_duplicates),
        ("remove dead parts after points", remove_dead),
        ("classifier as rules", lambda p: as_rules(p, inputs, lines)),
        ("merge duplicate parts after rules", merge_duplicates),
        ("remove dead parts after rules", remove_dead),
    ]
    stages, current = [], program
    with Progress("simplifying", len(passes), quiet) as progress:
        for name, function in passes:
            current = function(current)
            stages.append((name, current))
            progress.update(1, name)
    weighted = dict(stages)["remove dead parts after points"]
    result = min((current, weighted), key=lambda p: generate(p).count("\n"))
    if expected is not None and _wrong(result, checks, expected).size:
        for name, stage in stages:
            wrong = _wrong(stage, checks, expected)
            if wrong.size:
                tokens = [program.input_vocab[i] for i in checks[wrong[0]] if i != 0]
                raise SimplifyError(f"simplify pass {name!r} changed the prediction on {tokens} ({wrong.size} inputs)")
    return result


def lines(program: Program) -> int:
    """Lines of the code of `program` once the parts nothing reads are gone."""
    return generate(remove_dead(program)).count("\n")


def _wrong(program: Program, inputs: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The rows of `inputs` on which `program` does not predict `expected`."""
    return np.flatnonzero((predictions(program, inputs) != expected).any(1))
