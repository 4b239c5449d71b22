"""Training speed: median seconds per epoch (training steps + validation pass) of one task.

Default: `sort` at its default configuration, trained as the paper trained it (no gates; 3
layers, 4+4 heads, 2+2 MLPs, 20,000 examples, batch 512). Prints one table. Usage:
python benchmarks/train_speed.py [--task sort] [--epochs 6] [--repeats 3]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
from pathlib import Path

import torch

from transformer_programs.config import TrainConfig
from transformer_programs.experiments.ledger import PAPER_TRAINING
from transformer_programs.train import train

TARGET_SECONDS = 0.3  # issue 2's target on the 2-core machine
ORIGINAL_SECONDS = 3.0  # the original implementation on the same configuration (issue 2)


def epoch_seconds(task: str, epochs: int, seed: int) -> list[float]:
    """Seconds of each epoch of one fresh run (training and validation, as metrics.csv logs them)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        train(TrainConfig(task=task, epochs=epochs, seed=seed, **PAPER_TRAINING), out, quiet=True)
        return [float(row["seconds"]) for row in csv.DictReader((out / "metrics.csv").open())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="sort")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run; the first is dropped (warm-up)")
    parser.add_argument("--repeats", type=int, default=3, help="independent runs")
    args = parser.parse_args()
    medians = []
    for repeat in range(args.repeats):
        seconds = epoch_seconds(args.task, args.epochs, seed=repeat)[1:]
        medians.append(statistics.median(seconds))
    median = statistics.median(medians)
    print(f"| task | threads | runs x epochs | median s/epoch | per-run medians | target | vs original (~{ORIGINAL_SECONDS:.0f} s) |")
    print("|---|---|---|---|---|---|---|")
    runs = ", ".join(f"{m:.3f}" for m in medians)
    print(
        f"| {args.task} | {torch.get_num_threads()} | {args.repeats} x {args.epochs - 1} | {median:.3f} | {runs} "
        f"| {TARGET_SECONDS} ({median / TARGET_SECONDS:.1f}x) | {ORIGINAL_SECONDS / median:.1f}x faster |"
    )


if __name__ == "__main__":
    main()
