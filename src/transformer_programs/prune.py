"""Pruning: remove whole parts of a trained Transformer Program so that its program is short.

A trained model spreads its algorithm over every head and MLP, and its classifier reads every
variable, so no rewriting of the same model makes its program short: the model itself has to
become smaller. A part (a head or an MLP) is removed by replacing its output with a constant
(its most common value on the training inputs); a classifier read is removed by not adding that
variable's weights. Two steps:

1. greedy removal: the parts and reads whose removal costs the least validation accuracy go,
   while the accuracy stays within `max_drop` of the run's;
2. progressive removal (with fine-tuning): several of the cheapest parts go at once, the rest
   is fine-tuned (relaxed, the best validation epoch kept), and the step stays if accuracy is
   back within budget (then greedy removal again), else it is undone and halved.

(Gated fine-tuning with an L0 penalty, tried before these, removed no more: docs/experiments.md.)

Parts that nothing kept reads are removed as well; that changes no prediction. The choices are
made on validation; test accuracy is only reported.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import __version__, runio
from .config import MAX_SEED
from .model.program_config import part_names, variable_layout
from .model.program_model import TransformerProgram
from .program import extract
from .program.ir import live_variables
from .progress import Progress
from .data import Dataset
from .runs import LoadedRun, load_run
from .threads import thread_count, torch_threads
from .train import batch_loss, denormals_flushed, evaluate_split, temperature

@dataclass
class PruneConfig:
    """How to prune a run. The defaults keep validation within 0.1 point; the table of pruned
    programs in docs/measurements.md passes `--max-drop 0.005` (dyck1 0.003)."""

    max_drop: float = 0.001  # validation accuracy (absolute) the pruned model may lose against the run
    finetune_epochs: int = 10  # epochs of fine-tuning after each progressive step (0: greedy removal only)
    lr: float = 1e-2  # Adam
    tau_start: float = 1.0  # Gumbel temperature of the fine-tunings, annealed to tau_end
    tau_end: float = 0.01
    seed: int = 0

    def check(self) -> None:
        if not 0 <= self.max_drop <= 1:
            raise ValueError(f"--max-drop must be between 0 and 1, got {self.max_drop}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"--seed must be between 0 and {MAX_SEED}, got {self.seed}")
        if self.finetune_epochs < 0:
            raise ValueError(f"--finetune-epochs cannot be negative, got {self.finetune_epochs}")
        if not (self.lr > 0 and 0 < self.tau_end <= self.tau_start < math.inf):
            raise ValueError("need --lr > 0 and 0 < --tau-end <= --tau-start (finite)")


@dataclass
class Pruning:
    """What is removed: parts replaced by constants, and variables the classifier does not read."""

    pruned: dict[str, int] = field(default_factory=dict)
    unread: list[str] = field(default_factory=list)

    def without(self, kind: str, name: str, constants: dict[str, int]) -> "Pruning":
        """A copy with one more part ("part") or classifier read ("read") removed."""
        if kind == "part":
            return Pruning({**self.pruned, name: constants[name]}, list(self.unread))
        return Pruning(dict(self.pruned), [*self.unread, name])


def most_common_values(model: TransformerProgram, inputs: torch.Tensor) -> dict[str, int]:
    """Each part's most common value at real positions of `inputs` (its constant when removed)."""
    _, trace = model.discrete(inputs)
    valid = inputs != 0  # (N, T)
    return {name: Counter(trace[name][valid].tolist()).most_common(1)[0][0] for name in part_names(model.config)}


class _Pruner:
    """A run's model with a changing pruning, evaluated on the run's data."""

    def __init__(self, run: LoadedRun, data: Dataset, config: PruneConfig, progress: Progress):
        self.run, self.data, self.config, self.progress = run, data, config, progress
        self.model: TransformerProgram = run.model
        self.constants = most_common_values(self.model, data.tensors["train"][0])
        # Where pruning starts: what the run already prunes (closed gates, an earlier prune).
        self.start = Pruning(dict(self.model.config.pruned), list(self.model.config.unread))
        self.floor = self.accuracy(self.start) - config.max_drop
        self.candidates = [("part", name) for name in part_names(self.model.config)]
        self.candidates += [("read", name) for name, _ in variable_layout(self.model.config)]

    def apply(self, pruning: Pruning) -> None:
        self.model.set_pruning(pruning.pruned, pruning.unread)

    def accuracy(self, pruning: Pruning, split: str = "val") -> float:
        self.apply(pruning)
        self.progress.update(1, f"{len(pruning.pruned)} parts and {len(pruning.unread)} reads removed")
        return evaluate_split(self.model, self.data, split)["score"]

    def remaining(self, pruning: Pruning) -> list[tuple[str, str]]:
        removed = {("part", name) for name in pruning.pruned} | {("read", name) for name in pruning.unread}
        return [candidate for candidate in self.candidates if candidate not in removed]

    def without_dead(self, pruning: Pruning) -> Pruning:
        """`pruning` with every part that no kept part and no classifier read needs removed too."""
        self.apply(pruning)
        needed = live_variables(extract(self.model, self.run.input_vocab, self.run.label_vocab))
        dead = [name for name in part_names(self.model.config) if name not in needed and name not in pruning.pruned]
        for name in dead:
            pruning = pruning.without("part", name, self.constants)
        return pruning

    def greedy(self, pruning: Pruning) -> Pruning:
        """Remove parts and reads while validation accuracy stays within budget: each pass ranks
        the remaining ones by the accuracy left without each, then removes them in that order,
        each one only if the accuracy stays within budget with the ones before it removed."""
        pruning = self.without_dead(pruning)
        while True:
            scores = {candidate: self.accuracy(pruning.without(*candidate, self.constants))
                      for candidate in self.remaining(pruning)}
            removed_any = False
            for candidate in sorted(scores, key=scores.__getitem__, reverse=True):
                if scores[candidate] < self.floor:
                    break
                if candidate not in self.remaining(pruning):  # gone with a part it fed
                    continue
                trial = pruning.without(*candidate, self.constants)
                if self.accuracy(trial) >= self.floor:
                    pruning, removed_any = self.without_dead(trial), True
            if not removed_any:
                return pruning

    def progressive(self, pruning: Pruning) -> Pruning:
        """Remove more than the budget allows at once, fine-tuning after each step: the `step`
        parts and reads whose removal alone costs the least go together; a step that fine-tuning
        brings back within budget is kept (and followed by greedy removal), else undone and halved."""
        pruning = self.greedy(pruning)
        step = max(1, len(self.remaining(pruning)) // 4)
        while step >= 1 and self.remaining(pruning):
            scores = {c: self.accuracy(pruning.without(*c, self.constants)) for c in self.remaining(pruning)}
            trial = pruning
            for candidate in sorted(scores, key=scores.__getitem__, reverse=True)[:step]:
                if candidate in self.remaining(trial):
                    trial = trial.without(*candidate, self.constants)
            trial = self.without_dead(trial)
            weights = _snapshot(self.model)
            self.finetune(trial, self.config.finetune_epochs)
            if self.accuracy(trial) >= self.floor:
                pruning = self.greedy(trial)
            else:
                self.model.load_state_dict(weights)
                step //= 2
        return pruning

    def finetune(self, pruning: Pruning, epochs: int) -> None:
        """Relaxed training of the model under `pruning`, the best validation epoch kept."""
        self.apply(pruning)
        model, config = self.model, self.config
        train_x, train_y = self.data.tensors["train"]
        batch_size = self.run.train_config.batch_size
        steps = math.ceil(len(train_x) / batch_size)
        generator = torch.Generator().manual_seed(config.seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        best = (self.accuracy(pruning), _snapshot(model))
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(len(train_x), generator=generator)  # (N,)
            with denormals_flushed():
                for batch in range(steps):
                    index = order[batch * batch_size : (batch + 1) * batch_size]
                    tau = temperature(epoch * steps + batch, epochs * steps, config.tau_start, config.tau_end)
                    loss = batch_loss(model, train_x[index], train_y[index], tau, generator)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
            model.eval()
            model.round_classifier()  # a classifier of points stays one
            score = self.accuracy(pruning)
            if score >= best[0]:
                best = (score, _snapshot(model))
        model.load_state_dict(best[1])


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def count_parts(pruning: Pruning, model: TransformerProgram) -> dict[str, int]:
    """Parts and classifier reads kept."""
    return {
        "parts": len(part_names(model.config)) - len(pruning.pruned),
        "reads": len(variable_layout(model.config)) - len(pruning.unread),
    }


def staging_dir(out: Path) -> Path:
    """Where a pruned run is built before it is renamed to `out` (a hidden sibling of it)."""
    return out.with_name(f".{out.name}.pruning")


def prune(run_dir: Path, out: Path, config: PruneConfig, quiet: bool = True,
          finish: Callable[[Path], object] | None = None, threads: int | None = None) -> dict:
    """Prune the run in `run_dir` into a new run directory `out` (fine-tuning on `threads` torch
    threads, see threads.thread_count); return (and write) its results.

    The run is built in a hidden sibling directory and renamed to `out` only once complete (after
    `finish(directory)`, which the CLI uses to decompile it), so an interrupted prune leaves no
    half-run: `out` is untouched and the same command can run again."""
    config.check()
    threads = thread_count(threads)
    run = load_run(Path(run_dir))
    if not isinstance(run.model, TransformerProgram):
        raise ValueError(f"{run_dir} holds a {type(run.model).__name__}; only Transformer Programs prune")
    out = Path(out)
    if out.resolve().is_relative_to(Path(run_dir).resolve()):
        raise ValueError(f"--out {out} lies inside the run being pruned; choose a directory outside {run_dir}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise runio.RunError(f"{out} is not empty (or is a file); prune writes a new run directory")
    started = time.perf_counter()
    data = run.dataset
    with torch_threads(threads), Progress("pruning: evaluations", None, quiet) as progress:
        pruner = _Pruner(run, data, config, progress)
        before = {split: pruner.accuracy(pruner.start, split) for split in ("val", "test")}
        pruning = pruner.progressive(pruner.start) if config.finetune_epochs else pruner.greedy(pruner.start)
        pruner.apply(pruning)
        results = {split: evaluate_split(run.model, data, split) for split in ("train", "val", "test")}
    results["pruning"] = {
        "from": str(run_dir),
        "config": asdict(config),
        "before": before,
        "kept": count_parts(pruning, run.model),
        "of": count_parts(Pruning(), run.model),
        "pruned": pruning.pruned,
        "unread": pruning.unread,
        "seconds": time.perf_counter() - started,
    }
    results["notes"] = data.splits.notes
    run_config = {**run.config, "model": run.model.config.to_dict(), "version": __version__}
    staging = staging_dir(out)
    shutil.rmtree(staging, ignore_errors=True)  # what an interrupted prune of the same --out left
    try:
        staging.mkdir(parents=True)
        runio.write_json(staging / "config.json", run_config)
        runio.save_tensors(staging / "model.safetensors", dict(run.model.state_dict()))
        runio.write_json(staging / "results.json", results)
        if finish is not None:
            finish(staging)
        if out.exists():
            out.rmdir()  # empty, checked above
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return results
