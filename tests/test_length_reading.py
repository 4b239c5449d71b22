"""benchmarks/length_reading.py: the per-label and per-position accounts of a
length-generalization run add up to its test accuracy, and its parts at fault to its test
mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import load_benchmark
from transformer_programs.api import Run
from transformer_programs.config import TrainConfig
from transformer_programs.train import train


def test_a_reading_accounts_for_every_test_position(tmp_path: Path) -> None:
    module = load_benchmark("length_reading")
    config = TrainConfig(task="hist", epochs=3, n_examples=300, train_lengths=(1, 3), test_lengths=(4, 6))
    results = train(config, tmp_path / "run", quiet=True)
    reading = module.reading(Run(tmp_path / "run"))
    rows = reading["by_label"].values()
    right, positions = sum(row[0] for row in rows), sum(row[1] for row in rows)
    assert positions == results["test"]["tokens"]
    assert right / positions == pytest.approx(results["test"]["accuracy"])
    assert sum(reading["parts"].values()) == positions - right
    assert all(row[2] == 0 for label, row in reading["by_label"].items() if int(label) > 3)  # counts above 3: never trained
    assert "labels never seen" in module.unseen_summary(reading["by_label"])
    by_position = reading["by_position"]
    assert sum(row[0] for row in by_position.values()) == right
    assert sum(row[1] for row in by_position.values()) == positions
    assert all(row[2] == 0 for position, row in by_position.items() if position > 3)  # <s> and 3 tokens in training
    assert all(row[2] > 0 for position, row in by_position.items() if position <= 3)
    assert "positions never seen" in module.unseen_summary(by_position, "positions")
    by_length = reading["by_length"]
    assert sorted(by_length["train"]) == [1, 2, 3] and sorted(by_length["test"]) == [4, 5, 6]
    assert sum(row[0] for row in by_length["test"].values()) == right
    assert sum(row[1] for row in by_length["test"].values()) == positions
    assert sum(row[1] for row in by_length["train"].values()) == results["train"]["tokens"]


def test_no_run_given_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load_benchmark("length_reading").main([])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and err.startswith("usage:")
