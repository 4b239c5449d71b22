"""What a length-generalization run's program gets wrong on the longer test lengths, and why:
its test mistakes grouped by the part at fault (as `tprog errors --split test`), and its test
accuracy per expected label beside how often that label occurs in training. A program whose
mistakes are exactly the labels it never saw in training computes a length-general algorithm
and lacks only the answers; one that errs on labels it trained on depends on lengths it did not.

    python benchmarks/length_reading.py lengthgen/hist/trials/hist-n10-s0 ...

A run is a trial directory of `tprog lengthgen` (or any run trained with --test-lengths).
"""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np

from transformer_programs.api import Run
from transformer_programs.program.interpret import run_batch


def reading(run: Run) -> dict:
    """Test mistakes by part, and per expected test label: (right, positions, training positions)."""
    vocab = run.loaded.label_vocab.tokens
    inputs, labels = run.split("test")  # (N, T) each
    predicted = run_batch(run.program, inputs)[0]  # (N, T)
    scored = labels != 0  # (N, T)
    train_labels = run.split("train")[1]
    in_training = Counter(vocab[i] for i in train_labels[train_labels != 0].tolist())
    by_label = {}
    for label in np.unique(labels[scored]).tolist():
        at = scored & (labels == label)
        by_label[vocab[label]] = (int((predicted[at] == label).sum()), int(at.sum()), in_training[vocab[label]])
    parts = Counter()
    for group in run.errors("test"):
        parts[group.part] += group.count
    return {"parts": dict(parts.most_common()), "by_label": by_label}


def right_of(rows: list[tuple[int, int, int]]) -> str:
    """"R of N": positions right of positions, over (right, positions, training positions) rows."""
    return f"{sum(row[0] for row in rows)} of {sum(row[1] for row in rows)}"


def unseen_summary(by_label: dict) -> str:
    """Right of all test positions whose label training held, and of those whose label it never held."""
    seen = [row for row in by_label.values() if row[2]]
    unseen = [row for row in by_label.values() if not row[2]]
    return f"labels seen in training: {right_of(seen)} right; labels never seen: {right_of(unseen)} right"


def main(paths: list[str]) -> None:
    if not paths:
        sys.exit("usage: python benchmarks/length_reading.py RUN_DIR ...")
    for path in paths:
        result = reading(Run(path))
        print(f"{path}: test mistakes by part {result['parts'] or 'none'}; {unseen_summary(result['by_label'])}")
        cells = [f"{label}: {right}/{total} (train {train})" for label, (right, total, train) in result["by_label"].items()]
        print("  per label, right/test positions (training positions):", ", ".join(cells))


if __name__ == "__main__":
    main(sys.argv[1:])
