"""Time to a verified program, per RASP task: from nothing to a program verified against its model,
for one seed and for the paper's protocol (several seeds, the best by validation).

Each seed trains with the task's epoch budget (`tprog tasks`) and early stopping, in its own
`tprog train` process; the protocol runs `--workers` seeds at a time with one torch thread each,
the single seed runs alone. Only the kept seed is decompiled: both programs written and verified,
exhaustively where the task's inputs can be listed. Prints one table. Usage:
python benchmarks/time_to_program.py [--tasks sort,hist] [--seeds 5] [--workers 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TPROG = [sys.executable, "-m", "transformer_programs.cli"]
TARGETS = {"sort": 99.5, "hist": 99.9, "reverse": 99.0, "double_hist": 97.0, "most_freq": 70.0, "dyck1": 99.0,
           "dyck2": 98.5}  # issue 2's test accuracy targets (%)
PROTOCOL_TARGETS = {"sort": 99.8}  # issue 17: sort's 5-seed protocol


def train(task: str, seed: int, out: Path, threads: int, early_stop: int) -> float:
    """Train one seed in its own process; its wall seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    subprocess.run([*TPROG, "train", task, "--seed", str(seed), "--early-stop", str(early_stop), "--out", str(out),
                    "--quiet"], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def decompile(run_dir: Path) -> float:
    """Write and verify the run's programs; wall seconds (an error if any program disagrees)."""
    started = time.perf_counter()
    subprocess.run([*TPROG, "decompile", str(run_dir)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TARGETS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="seeds trained at once in the protocol")
    parser.add_argument("--early-stop", type=int, default=5, help="patience in epochs (0: off)")
    parser.add_argument("--out", help="where the runs go (default: a temporary directory)")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="time_to_program_"))
    rows = []
    for task in args.tasks.split(","):
        single = root / task / "single"
        train_s = train(task, 0, single, threads=os.cpu_count() or 1, early_stop=args.early_stop)
        single_s = train_s + decompile(single)
        started = time.perf_counter()
        seeds = [root / task / f"seed{seed}" for seed in range(args.seeds)]
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(lambda s: train(task, s, seeds[s], 1, args.early_stop), range(args.seeds)))
        kept = max(seeds, key=lambda run: (results(run)["val"]["accuracy"], -seeds.index(run)))
        decompile(kept)
        protocol_s = time.perf_counter() - started
        one, best = results(single), results(kept)
        target = TARGETS.get(task)
        rows.append([task, f"{one['epochs']}", f"{single_s:.0f}", f"{100 * one['test']['accuracy']:.2f}",
                     f"{protocol_s:.0f}", f"{seeds.index(kept)}", f"{100 * best['test']['accuracy']:.2f}",
                     f"{PROTOCOL_TARGETS.get(task, target)}", "yes" if 100 * best["test"]["accuracy"] >= PROTOCOL_TARGETS.get(
                         task, target or 0) else "no"])
    header = ["task", "seed 0 epochs", "seed 0 s", "seed 0 test %", f"{args.seeds} seeds s", "kept seed",
              "kept test %", "target %", "met"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"(runs in {root})", file=sys.stderr)


if __name__ == "__main__":
    main()
