"""The classifier's points refitted: the sparsest small integers that give every listed joint value
of its reads the same label, found by a linear program (least total |point|, each winning label
ahead of the others by a margin) and then rounded, the rounding checked on every joint value.

Rounding a fitted weight from the model would need a scale large enough for float-level margins
(most_freq: 10^6); refitting is free to choose other weights, as long as every label stays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from .ir import Classifier

MAX_ROUNDS = 20  # cutting-plane rounds: each adds joint values the last solution got wrong
ROUND_STATES = 2_000  # joint values in the first round's program, and most added by each later one
MAX_FIT_STATES = 100_000  # joint values: past this many, no refit is tried (most_freq has 632,693)
SCALES = (1, 2, 3, 5, 10, 20, 50)  # fitted weights are tried times these, smallest first
LP_SECONDS = 20.0  # one linear program past this is tried once more without presolve, then given up (no fit)


def _design(names: list[str], values: np.ndarray, linear: set[str]) -> tuple[np.ndarray, list[tuple[str, int | None]]]:
    """The features of each joint value (S, F): a one-hot column per categorical read's value, the
    value itself for a numerical read, then 1 for the bias; and what each column is."""
    columns: list[tuple[str, int | None]] = []
    blocks = []
    for j, name in enumerate(names):
        if name in linear:
            columns.append((name, None))
            blocks.append(values[:, j : j + 1].astype(np.float64))
            continue
        seen = np.unique(values[:, j])
        columns += [(name, int(v)) for v in seen]
        blocks.append((values[:, j : j + 1] == seen[None, :]).astype(np.float64))
    blocks.append(np.ones((len(values), 1)))
    columns.append(("", None))
    return np.hstack(blocks), columns


def _margins(features: np.ndarray, weights: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How far each joint value's label leads every other label (S, L), +inf at its own label;
    labels are column indices of `weights` (F, L)."""
    scores = features @ weights  # (S, L)
    lead = scores[np.arange(len(labels)), labels][:, None] - scores  # (S, L)
    lead[np.arange(len(labels)), labels] = np.inf
    return lead


def _solve(features: np.ndarray, labels: np.ndarray, n_labels: int) -> np.ndarray | None:
    """Weights (F, n_labels) of least total |weight| with each row's label ahead of every other by
    at least 1; None where no such weights exist."""
    width = features.shape[1]
    rows, cols, data, bounds = [], [], [], []
    r = 0
    for other in range(n_labels):
        keep = np.flatnonzero(labels != other)
        sub = features[keep]
        s, f = np.nonzero(sub)
        value = sub[s, f]
        # -(w[f, label] - w[f, other]) * x <= -1, over w = positive - negative parts
        for sign, label_of in ((-1.0, labels[keep][s]), (1.0, np.full(len(s), other))):
            rows.append(s + r)
            cols.append(f * n_labels + label_of)
            data.append(sign * value)
        bounds.append(-np.ones(len(keep)))
        r += len(keep)
    n = width * n_labels
    upper = sparse.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(r, n))
    problem = dict(c=np.ones(2 * n), A_ub=sparse.hstack([upper, -upper]).tocsr(), b_ub=np.concatenate(bounds),
                   bounds=(0, None), method="highs")
    result = linprog(**problem, options={"time_limit": LP_SECONDS})
    if result.status == 1:  # HiGHS's presolve can stall on a program it then finds infeasible in seconds without it
        result = linprog(**problem, options={"time_limit": LP_SECONDS, "presolve": False})
    if result.status != 0:
        return None
    return (result.x[:n] - result.x[n:]).reshape(width, n_labels)


class PointFitter:
    """Fits the classifier as integer points on some of the columns of one table of joint values
    (`names`, `values` (S, names)) with their label ids `labels` (1..n_labels-1; id 0 is never
    predicted), each result checked by `same` (Classifier -> bool).

    Fits run by cutting planes: a linear program on some joint values, then again with those the
    solution gets most wrong added, until it gets none wrong. The joint values one fit needed
    start the next, so a series of fits on similar columns settles in a few rounds.
    """

    def __init__(self, names: list[str], values: np.ndarray, labels: np.ndarray, n_labels: int,
                 rows: dict[str, int], same: Callable[[Classifier], bool]) -> None:
        self.names, self.values, self.labels, self.n_labels = names, values, labels - 1, n_labels - 1
        self.rows, self.same = rows, same  # rows: the table size of each categorical read
        self.active = np.zeros(len(labels), dtype=bool)  # (S,) the joint values the programs hold
        self.active[np.random.default_rng(0).permutation(len(labels))[:ROUND_STATES]] = True

    def _fit(self, names: list[str], linear: set[str]) -> tuple[np.ndarray, list, np.ndarray] | None:
        """The features and columns of `names` (as `feasible`) and weights that give every joint
        value its label by a lead of 1, by cutting planes; None past MAX_FIT_STATES joint values,
        where no such weights exist, or where they have not settled in MAX_ROUNDS."""
        if len(self.labels) > MAX_FIT_STATES:
            return None
        features, columns = _design(names, self.values[:, [self.names.index(name) for name in names]], linear)
        for _ in range(MAX_ROUNDS):
            active = self.active
            weights = _solve(features[active], self.labels[active], self.n_labels)
            if weights is None:
                return None
            lead = _margins(features, weights, self.labels).min(1) - 1  # (S,)
            short = np.flatnonzero((lead < -1e-6) & ~active)
            if not short.size:
                return features, columns, weights
            self.active[short[np.argsort(lead[short])[:ROUND_STATES]]] = True
        return None

    def feasible(self, names: list[str], linear: set[str]) -> bool:
        """Whether points reading `names` (one weight per label times the value for those in
        `linear`, a table of points per value for the others) can give every joint value its
        label; False also past MAX_FIT_STATES joint values."""
        return self._fit(names, linear) is not None

    def points(self, names: list[str], linear: set[str]) -> Classifier | None:
        """Integer points reading `names` (as `feasible`) that give every joint value its label:
        the fitted weights times the smallest scale at which, rounded, they keep every label;
        None where there are none. Each weight rounds by at most 1/2, so a lead of 1 moves by
        at most the sum of |feature|: scaled past that, the rounded points keep every label."""
        fit = self._fit(names, linear)
        if fit is None:
            return None
        features, columns, weights = fit
        enough = int(np.ceil(np.abs(features).sum(1).max())) + 1
        for scale in [scale for scale in SCALES if scale < enough] + [enough]:
            classifier = _classifier(np.round(weights * scale), columns, self.rows)
            if self.same(classifier):
                return classifier
        return None


def _classifier(points: np.ndarray, columns: list[tuple[str, int | None]], rows: dict[str, int]) -> Classifier:
    """The Classifier of integer points (F, L-1) per feature column (0 for label 0, never
    predicted), reading only the variables some point of which is not 0."""
    def row(f: int) -> list[float]:
        return [0.0, *map(float, points[f])]

    size = points.shape[1] + 1
    categorical: dict[str, list[list[float]]] = {}
    numerical: dict[str, list[float]] = {}
    bias = row(len(columns) - 1)
    silent = {name for name, _ in columns[:-1]} - {name for f, (name, _) in enumerate(columns[:-1]) if points[f].any()}
    for f, (name, value) in enumerate(columns[:-1]):
        if name in silent:  # every point of this read is 0: it is not read
            continue
        if value is None:
            numerical[name] = row(f)
            continue
        table = categorical.setdefault(name, [[0.0] * size for _ in range(rows[name])])
        table[value] = row(f)
    return Classifier(bias, categorical, numerical)
