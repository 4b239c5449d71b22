"""The classifier's weights as source text: per-variable tables of integer points where
simplify has made them so (several rows to a line), else float32 values in their shortest exact
text (a bias that holds constant variables' rows: float64 values), then the classify() that sums
them. A stage of `codegen`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .ir import Classifier
from .templates import CLASSIFY_POOLED, CLASSIFY_WEIGHTS, F32, wrapped


def _floats(row: list[float]) -> list[str]:
    """The weights of every label but <pad>, each in the shortest text that f32() reads back
    as exactly that float32 value (its full float64 repr where the short one would not)."""
    texts = []
    for weight in row[1:]:
        short = str(np.float32(weight))
        exact = np.float32(float(short)) == np.float32(weight) and float(np.float32(weight)) == weight
        texts.append(short if exact else repr(weight))
    return texts


def weights_lines(classifier: Classifier, domains: dict[str, list[int]], show: Callable[[str, int], str]) -> list[str]:
    """Weights of every label but <pad> (never predicted), as per-variable tables: integer
    points where simplify has made them so, else float32 values in their shortest exact text."""
    rows = [classifier.bias, *classifier.numerical.values()]
    rows += [table[value] for name, table in classifier.categorical.items() for value in domains[name]]
    integral = all(float(weight).is_integer() for row in rows for weight in row[1:])

    def row(prefix: str, weights: list[float], suffix: str, indent: str) -> list[str]:
        if integral:
            return wrapped(prefix + "[", [str(int(w)) for w in weights[1:]], ", ", "]" + suffix, indent)
        if all(float(np.float32(w)) == w for w in weights[1:]):
            return wrapped(prefix + "f32(", _floats(weights), ", ", ")" + suffix, indent)
        return wrapped(prefix + "[", [repr(float(w)) for w in weights[1:]], ", ", "]" + suffix, indent)

    if integral:
        lines = ["", "", "# The classifier: each variable gives every label of LABELS points for its value; the label",
                 "# with the most points wins, the first of them on ties."]
    else:
        lines = [F32.rstrip("\n"), "", "", "# Classifier: scores of LABELS; categorical variables add a row per value,",
                 "# numerical variables add weight * value."]
    lines += row("CLASSIFIER_BIAS = ", classifier.bias, "", "")
    lines.append("CLASSIFIER_CATEGORICAL = {")
    for name, table in classifier.categorical.items():
        listed = domains[name]
        if not classifier.pooled:  # a value given no points is not listed
            listed = [value for value in listed if any(table[value][1:])]
        if integral:  # small integer rows: several to a line
            entries = [f"{show(name, v)}: [{', '.join(str(int(w)) for w in table[v][1:])}]" for v in listed]
            lines += wrapped(f"{name!r}: {{", entries, ", ", "},", "    ")
            continue
        lines.append(f"    {name!r}: {{")
        for value in listed:
            lines += row(f"{show(name, value)}: ", table[value], ",", "        ")
        lines.append("    },")
    lines.append("}")
    if classifier.numerical:
        lines.append("CLASSIFIER_NUMERICAL = {")
        for name, weights in classifier.numerical.items():
            lines += row(f"{name!r}: ", weights, ",", "    ")
        lines.append("}")
    else:
        lines.append("CLASSIFIER_NUMERICAL = {}")
    return [*lines, (CLASSIFY_POOLED if classifier.pooled else CLASSIFY_WEIGHTS).rstrip("\n")]
