"""Several seeds of one run, trained at once (one thread each, on Ray), and the best kept by
validation: the paper's protocol for one configuration (`tprog train TASK --seeds 0-4`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..config import TrainConfig
from .runner import Trial, run_trials

TABLE = "seeds.csv"


def seed_trials(base: TrainConfig, seeds: list[int]) -> list[Trial]:
    """One trial per seed, validated before any starts."""
    return [Trial(f"{base.task}-seed{seed}", {"task": base.task, "seed": seed}, replace(base, seed=seed).resolved())
            for seed in seeds]


def run_seeds(base: TrainConfig, seeds: list[int], out: Path, address: str | None = None,
              quiet: bool = False) -> tuple[list[dict], Path | None]:
    """Train every seed into OUT/trials/TASK-seedS (resuming what is there); the table's rows and
    the run directory of the seed with the best validation accuracy (the smaller seed on ties)."""
    out = Path(out)
    rows = run_trials(out, "seeds", seed_trials(base, seeds), TABLE, address, quiet)
    finished = [row for row in rows if row["status"] == "ok"]
    if not finished:
        return rows, None
    best = max(finished, key=lambda row: (row["val_accuracy"], -row["seed"]))
    return rows, out / "trials" / best["trial"]
