"""Training under load: median seconds per epoch of a task with 1 torch thread against torch's
default (one per core), alone and beside a process that keeps one core busy. torch's idle
threads spin-wait, so a 2-thread job beside any other work can run many times slower.

Run it on an otherwise idle machine (stop background jobs first). Prints one table.
Usage: python benchmarks/threads_under_load.py [--tasks hist,sort] [--epochs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

TRAIN = """
import csv, sys, tempfile, torch
from pathlib import Path
from transformer_programs.config import TrainConfig
from transformer_programs.train import train
torch.set_num_threads(int(sys.argv[3]))
with tempfile.TemporaryDirectory() as tmp:
    train(TrainConfig(task=sys.argv[1], epochs=int(sys.argv[2])), Path(tmp) / "run", quiet=True)
    print(*[row["seconds"] for row in csv.DictReader((Path(tmp) / "run" / "metrics.csv").open())])
"""
BUSY = "while True: pass"


def epoch_median(task: str, epochs: int, threads: int, busy: bool) -> float:
    """Median seconds per epoch after the first, of one fresh run in its own process."""
    load = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
    try:
        env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
        done = subprocess.run([sys.executable, "-c", TRAIN, task, str(epochs), str(threads)], env=env,
                              capture_output=True, text=True, check=True)
    finally:
        if load is not None:
            load.kill()
            load.wait()
    return statistics.median(float(s) for s in done.stdout.split()[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="hist,sort")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run; the first is dropped (warm-up)")
    args = parser.parse_args()
    cores = os.cpu_count()
    print(f"| task | threads | alone s/epoch | beside a busy core s/epoch | slowdown under load | cores: {cores} |")
    print("|---|---|---|---|---|---|")
    for task in args.tasks.split(","):
        for threads in (1, cores):
            alone = epoch_median(task, args.epochs, threads, busy=False)
            loaded = epoch_median(task, args.epochs, threads, busy=True)
            print(f"| {task} | {threads} | {alone:.3f} | {loaded:.3f} | {loaded / alone:.1f}x | |", flush=True)


if __name__ == "__main__":
    main()
