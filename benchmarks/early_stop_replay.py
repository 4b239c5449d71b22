"""Would early stopping have cost accuracy? Replays `--early-stop N` on finished full-length runs.

A run's `metrics.csv` holds the validation score of every epoch, so the epoch at which
`train.should_stop` would have stopped, and the epoch that run would then have kept, follow
without training again. Where the kept epoch is the same as the full run's, so are its weights,
its test accuracy and its program: early stopping cost nothing on that run. Prints one table.
Usage: python benchmarks/early_stop_replay.py RUN_DIR... [--patience 5,10,20]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from transformer_programs.train import should_stop, validation_score


def replay(metrics: list[dict], patience: int) -> tuple[int, int]:
    """(epochs trained, epoch kept) had the run stopped early with `patience` (latest best on ties)."""
    best_epoch, best_score = 0, -1.0
    for epoch in range(len(metrics)):
        if should_stop(metrics[:epoch], best_epoch, patience):
            return epoch, best_epoch
        if validation_score(metrics[epoch]) >= best_score:
            best_epoch, best_score = epoch + 1, validation_score(metrics[epoch])
    return len(metrics), best_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--patience", default="5,10,20")
    args = parser.parse_args()
    print("| run | epochs | kept epoch (val %) | patience | stopped after | kept epoch (val %) | epochs saved | same kept epoch |")
    print("|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        with open(run / "metrics.csv", newline="", encoding="utf-8") as file:
            metrics = list(csv.DictReader(file))
        full_epochs, full_kept = replay(metrics, 0)
        for patience in (int(p) for p in args.patience.split(",")):
            stopped, kept = replay(metrics, patience)
            print(f"| {run.name} | {full_epochs} | {full_kept} ({100 * validation_score(metrics[full_kept - 1]):.2f}) | {patience} "
                  f"| {stopped} | {kept} ({100 * validation_score(metrics[kept - 1]):.2f}) | {100 * (1 - stopped / full_epochs):.0f}% "
                  f"| {'yes' if kept == full_kept else 'no'} |")


if __name__ == "__main__":
    main()
