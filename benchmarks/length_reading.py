"""What a length-generalization run's program gets wrong on the longer test lengths, and why:
its test mistakes grouped by the part at fault (as `tprog errors --split test`), and its test
accuracy per expected label and per position, each beside how often training held it. A program
whose mistakes are exactly the labels it never saw in training computes a length-general
algorithm and lacks only the answers; one that errs at the positions training never held
depends on lengths it did not see. Accuracy per input length, on the training split and on the
test split, tells whether the training lengths were learned at all, and from which length on not.

    python benchmarks/length_reading.py lengthgen/hist-n10/trials/hist-n10-s0 ...

A run is a trial directory of `tprog lengthgen` (or any run trained with --test-lengths).
"""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np

from transformer_programs.api import Run
from transformer_programs.program.interpret import run_batch
from transformer_programs.vocab import BOS, EOS, PAD


def tally(test_keys: np.ndarray, right: np.ndarray, train_keys: np.ndarray) -> dict:
    """Per key of the scored test positions (flat `test_keys`, with `right` beside them):
    (right, test positions, training positions holding that key)."""
    in_training = Counter(train_keys.tolist())
    return {key: (int(right[test_keys == key].sum()), int((test_keys == key).sum()), in_training[key])
            for key in np.unique(test_keys).tolist()}


def by_length(run: Run, inputs: np.ndarray, labels: np.ndarray, predicted: np.ndarray) -> dict[int, tuple[int, int]]:
    """Per input length (content symbols: `<s>`, `</s>` and padding left out) of a split's
    (N, T) inputs, labels and predictions: (scored positions right, scored positions)."""
    index = run.loaded.input_vocab.index
    markers = [index[token] for token in (PAD, BOS, EOS) if token in index]
    scored = labels != 0  # (N, T)
    right = (predicted == labels) & scored  # (N, T)
    lengths = (~np.isin(inputs, markers)).sum(axis=1)  # (N,)
    return {int(n): (int(right[lengths == n].sum()), int(scored[lengths == n].sum()))
            for n in np.unique(lengths).tolist()}


def reading(run: Run) -> dict:
    """Test mistakes by part, and per expected test label and per position: (right, test
    positions, training positions)."""
    vocab = run.loaded.label_vocab.tokens
    inputs, labels = run.split("test")  # (N, T) each
    predicted = run_batch(run.program, inputs)[0]  # (N, T)
    scored = labels != 0  # (N, T)
    right = (predicted == labels)[scored]  # (scored,)
    train_inputs, train_labels = run.split("train")  # (N_train, T_train) each
    train_scored = train_labels != 0  # (N_train, T_train)
    by_label = tally(labels[scored], right, train_labels[train_scored])
    by_position = tally(np.nonzero(scored)[1], right, np.nonzero(train_scored)[1])
    parts = Counter()
    for group in run.errors("test"):
        parts[group.part] += group.count
    return {"parts": dict(parts.most_common()), "by_label": {vocab[label]: row for label, row in by_label.items()},
            "by_position": by_position,
            "by_length": {"train": by_length(run, train_inputs, train_labels, run_batch(run.program, train_inputs)[0]),
                          "test": by_length(run, inputs, labels, predicted)}}


def right_of(rows: list[tuple[int, int, int]]) -> str:
    """"R of N": positions right of positions, over (right, positions, training positions) rows."""
    return f"{sum(row[0] for row in rows)} of {sum(row[1] for row in rows)}"


def unseen_summary(rows_by_key: dict, what: str = "labels") -> str:
    """Right of all test positions whose key (label or position) training held, and of those
    whose key it never held."""
    seen = [row for row in rows_by_key.values() if row[2]]
    unseen = [row for row in rows_by_key.values() if not row[2]]
    return f"{what} seen in training: {right_of(seen)} right; {what} never seen: {right_of(unseen)} right"


def main(paths: list[str]) -> None:
    if not paths:
        print("usage: python benchmarks/length_reading.py RUN_DIR ... (one or more lengthgen runs)", file=sys.stderr)
        sys.exit(2)
    for path in paths:
        result = reading(Run(path))
        print(f"{path}: test mistakes by part {result['parts'] or 'none'}; {unseen_summary(result['by_label'])}; "
              f"{unseen_summary(result['by_position'], 'positions')}")
        for what in ("label", "position"):
            cells = [f"{key}: {right}/{total} (train {train})" for key, (right, total, train) in result[f"by_{what}"].items()]
            print(f"  per {what}, right/test positions (training positions):", ", ".join(cells))
        for split, rows in result["by_length"].items():
            cells = [f"{n}: {100 * right / total:.1f}" for n, (right, total) in rows.items() if total]
            print(f"  {split} accuracy % per input length:", ", ".join(cells))


if __name__ == "__main__":
    main(sys.argv[1:])
