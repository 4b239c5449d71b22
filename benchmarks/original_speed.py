"""Seconds per epoch, side by side: the original implementation (princeton-nlp/TransformerPrograms)
and this project, on each RASP task at the paper's architecture for it (this project's protocol training).

The original runs from a checkout given with --original, with its own flags from the paper's
scripts (scripts/rasp.sh, scripts/dyck.sh: 20,000 examples, batch 512, lengths up to 8, or 16 for
Dyck); the imports it needs only for word tasks (datasets, gensim, nltk, black) are replaced by
empty modules, and `einops` must be importable (`pip install einops`). An epoch is what each
implementation does per epoch: here, the training steps and a validation pass; in the original,
the training steps and an evaluation of its train, validation and test sets. The first epoch of
each run is dropped. Both run with the same number of torch threads, one run at a time. Prints
one table with the original's 250-epoch time and a fifth of it, issue 17's budget for a
single-seed run. Usage:
python benchmarks/original_speed.py --original DIR [--tasks sort,hist] [--epochs 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from transformer_programs.config import TrainConfig
from transformer_programs.experiments.ledger import PAPER_TRAINING

from train_speed import epoch_seconds

# Runs inside a fresh interpreter in the original's checkout: argv[1] is a JSON list of run.py flags.
ORIGINAL_RUNNER = """
import json, sys, time, types
for name in ("datasets", "gensim", "gensim.downloader", "nltk", "nltk.tokenize", "black"):
    sys.modules[name] = types.ModuleType(name)
sys.modules["nltk.tokenize"].word_tokenize = None
sys.modules["black"].format_str = sys.modules["black"].FileMode = None
import torch
import src.run as original
stamps = []
class TimedEpochs:
    def __init__(self, epochs, total=None):
        self.epochs = epochs
    def __iter__(self):
        for epoch in self.epochs:
            stamps.append(time.perf_counter())
            yield epoch
        stamps.append(time.perf_counter())
    def set_postfix(self, *args, **kwargs):
        pass
original.tqdm = TimedEpochs
sys.argv = ["run.py", *json.loads(sys.argv[1])]
original.run(original.parse_args())
print(json.dumps([b - a for a, b in zip(stamps, stamps[1:])]))
"""


def original_flags(task: str, epochs: int, out_dir: str) -> list[str]:
    """The original's run.py flags for a task: the paper's scripts, with the paper's architecture as
    this project sizes it (the protocol's training, not a task's own smaller model)."""
    config = TrainConfig(task=task, **PAPER_TRAINING).resolved()  # the model this project's side times
    length = 16 if task.startswith("dyck") else 8
    flags = {"dataset": task, "vocab_size": 8, "dataset_size": 20000, "min_length": length if length == 16 else 1,
             "max_length": length, "n_epochs": epochs, "batch_size": 512, "lr": 5e-2, "gumbel_samples": 1,
             "sample_fn": "gumbel_soft", "tau_init": 3.0, "tau_end": 0.01, "tau_schedule": "geomspace",
             "n_vars_cat": 1, "d_var": length, "n_vars_num": 1, "n_layers": config.layers,
             "n_heads_cat": config.heads_cat, "n_heads_num": config.heads_num, "n_cat_mlps": config.mlps_cat,
             "n_num_mlps": config.mlps_num, "attention_type": "cat", "rel_pos_bias": "fixed", "dropout": 0.0,
             "mlp_vars_in": 2, "d_mlp": 64, "selector_width": 0, "seed": 0, "unique": 1, "device": "cpu",
             "output_dir": out_dir}
    switches = ["--one_hot_embed", "--count_only"]
    return [part for key, value in flags.items() for part in (f"--{key}", str(value))] + switches


def original_epoch_seconds(checkout: Path, task: str, epochs: int, threads: int, out_dir: str) -> list[float]:
    """Seconds of each epoch of one run of the original, in its own process."""
    path = os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": path}
    done = subprocess.run([sys.executable, "-c", ORIGINAL_RUNNER, json.dumps(original_flags(task, epochs, out_dir))],
                          cwd=checkout, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the original failed on {task}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--original", required=True, type=Path, help="a checkout of princeton-nlp/TransformerPrograms")
    parser.add_argument("--tasks", default="sort,hist,reverse,double_hist,most_freq,dyck1,dyck2")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run; the first is dropped (warm-up)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not (args.original / "src" / "run.py").is_file():
        parser.error(f"{args.original} has no src/run.py: pass a checkout of princeton-nlp/TransformerPrograms")
    torch.set_num_threads(args.threads)
    print("| task | threads | original s/epoch | this project s/epoch | ratio | original 250 epochs (min) | "
          "a fifth of it (s) |")
    print("|---|---|---|---|---|---|---|")
    for task in args.tasks.split(","):
        with tempfile.TemporaryDirectory() as out_dir:
            theirs = statistics.median(original_epoch_seconds(args.original, task, args.epochs, args.threads,
                                                              out_dir)[1:])
        ours = statistics.median(epoch_seconds(task, args.epochs, seed=0)[1:])
        print(f"| {task} | {args.threads} | {theirs:.2f} | {ours:.2f} | {theirs / ours:.2f}x | "
              f"{250 * theirs / 60:.1f} | {50 * theirs:.0f} |", flush=True)


if __name__ == "__main__":
    main()
