"""What the length-generalization protocol still costs: core-hours per trial, task by task and n.

Each trial of `tprog lengthgen TASK --train-max N` (the protocol's settings: the task's model
and epochs, matched in steps where few inputs exist, the paper's training) is timed for a few
epochs on a tenth of its examples, and its seconds per epoch scaled to its whole training
split; times the trial's epochs, that is its training time on one core, the writing of its
program aside. Beside it: the trials of that cell
the ledger still lacks, and what they cost together. A sitting that ends kills a trial that has
not finished, so a trial longer than a sitting cannot finish on a machine that does not keep its
checkpoints. Run it alone (nothing else busy), one thread:

    OMP_NUM_THREADS=1 python benchmarks/protocol_cost.py [--tasks hist,sort] [--train-max 10,20,30,40]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from transformer_programs.config import TrainConfig
from transformer_programs.experiments.ledger import PAPER_TRAINING, Ledger
from transformer_programs.experiments.length import length_trials, training_examples
from transformer_programs.experiments.runner import Trial
from transformer_programs.train import train

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("hist", "sort", "reverse", "double_hist", "most_freq", "dyck1", "dyck2")
SEEDS = 3  # the protocol's seeds per cell (scripts/protocol.sh)
SHARE = 10  # time the epochs on 1/SHARE of the examples


def cell_trials(task: str, n: int) -> list[Trial]:
    """The protocol's trials of one cell, one per seed, as `tprog lengthgen` makes them."""
    return length_trials(TrainConfig(task=task, **PAPER_TRAINING), [task], [n], 10, SEEDS)


def seconds_per_epoch(config: TrainConfig, epochs: int) -> float:
    """Median seconds of an epoch (after the first) on 1/SHARE of the examples, scaled to the
    trial's training split (where few inputs exist, both may be all of them)."""
    small = replace(config, n_examples=config.n_examples // SHARE, epochs=epochs)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        train(small, out, quiet=True)
        seconds = [float(row["seconds"]) for row in csv.DictReader((out / "metrics.csv").open())][1:]
    return statistics.median(seconds) * training_examples(config) / training_examples(small)


def missing(ledger: Ledger, trials: list[Trial]) -> int:
    """How many of the cell's trials the ledger does not hold."""
    return sum(ledger.find("lengthgen", t.config.task, t.name, t.config) is None for t in trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--train-max", default="10,20,30,40")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per cell; the first is dropped")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ledger = Ledger(ROOT / "results")
    print("| task | n | s/epoch (one core) | epochs | core-hours a trial | trials left | core-hours left |")
    print("|---|---|---|---|---|---|---|")
    total = 0.0
    for task in args.tasks.split(","):
        for n in (int(value) for value in args.train_max.split(",")):
            trials = cell_trials(task, n)
            config = trials[0].config
            per_epoch = seconds_per_epoch(config, args.epochs)
            hours = per_epoch * config.epochs / 3600
            left = missing(ledger, trials)
            total += left * hours
            print(f"| {task} | {n} | {per_epoch:.1f} | {config.epochs} | {hours:.2f} | {left} | {left * hours:.1f} |",
                  flush=True)
    print(f"\ncore-hours left in all: {total:.1f}")


if __name__ == "__main__":
    main()
