"""benchmarks/addition_reading.py: its table holds every digit of every sum, in the run's digit
order, marked right exactly where the program writes it; its shares are what they claim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import load_benchmark
from transformer_programs.api import Run
from transformer_programs.config import TrainConfig
from transformer_programs.train import train


@pytest.mark.parametrize("reverse_sum", [True, False])
def test_the_table_holds_every_digit_of_every_sum(tmp_path: Path, reverse_sum: bool) -> None:
    module = load_benchmark("addition_reading")
    config = TrainConfig(task="addition", epochs=2, n_examples=300, layers=1, train_lengths=(1, 2),
                         reverse_sum=reverse_sum)
    train(config, tmp_path / "run", quiet=True)
    run = Run(tmp_path / "run")
    inputs, operands = module.all_inputs(run)
    assert len(operands) == 110 * 110 and len({(a, b, la, lb) for a, b, la, lb in operands}) == 110 * 110
    predicted = module.run_batch(run.simplified, inputs)[0]
    table = module.place_table(run, operands, predicted)
    assert len(table["digit"]) == sum(len(str(a + b)) for a, b, _, _ in operands)
    for n in (0, 57, 5000, 12099):
        a, b = operands[n][:2]
        rows = table["input"] == n
        assert sum(int(d) * 10**p for d, p in zip(table["digit"][rows], table["place"][rows])) == a + b
        written = run.predict(" ".join(["<s>", *str(a).zfill(operands[n][2]), "+", *str(b).zfill(operands[n][3])]))
        digits = str(a + b)[::-1] if reverse_sum else str(a + b)
        assert table["right"][rows].tolist() == [written[1 + i] == digits[i] for i in range(len(digits))][
            :: 1 if reverse_sum else -1]
    carry_in = table["carry in"][table["place"] == 1]
    assert set(carry_in.tolist()) == {0, 1}


def test_determined_is_the_share_of_the_most_common_value() -> None:
    module = load_benchmark("addition_reading")
    quantity = np.array([0, 0, 1, 1, 1, 2])
    assert module.determined([quantity], quantity) == 1.0
    assert module.determined([np.zeros(6, dtype=int)], quantity) == pytest.approx(3 / 6)
    assert module.determined([np.array([0, 0, 0, 1, 1, 1])], quantity) == pytest.approx(4 / 6)  # 0 0 1 | 1 1 2


def test_a_run_of_another_task_is_refused(tmp_path: Path, capsys) -> None:
    module = load_benchmark("addition_reading")
    train(TrainConfig(task="hist", epochs=1, n_examples=100, layers=1), tmp_path / "run", quiet=True)
    assert module.main([str(tmp_path / "run")]) == 2
    assert "plain addition only" in capsys.readouterr().err
    assert module.main([]) == 2
    assert capsys.readouterr().err.startswith("usage: python benchmarks/addition_reading.py RUN")
