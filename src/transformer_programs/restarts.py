"""Restarts: train several initializations of one seed's run and keep the best by validation.

A small model can stall: double_hist's two-layer model reached 99% test from one initialization
and stopped between 76% and 90% from others (docs/experiments.md). `--restarts K` trains
initializations 0..K-1 of the run (the same data, from the run's seed; models and training noise
from `TrainConfig.init_seed`) into OUT/candidates/initI, one after another, and copies the one
with the best validation score into OUT (the lower initialization on ties), so that OUT is an
ordinary run: its config.json names the initialization kept, and its results.json every one tried.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from . import runio
from .config import TrainConfig
from .train import train

CANDIDATES = "candidates"  # OUT/candidates/initI: one run per initialization
KEPT_FILES = ("config.json", "metrics.csv", "model.safetensors")  # the kept run, besides its results


def candidate_dir(out: Path, init: int) -> Path:
    """Where initialization `init` of a run with restarts trains."""
    return Path(out) / CANDIDATES / f"init{init}"


def train_with_restarts(config: TrainConfig, out: Path, resume: bool = False, quiet: bool = False,
                        threads: int | None = None) -> dict:
    """Train `config` into `out` (`train.train`), or with config.restarts > 1 each initialization
    and the best by validation copied into `out`; its results, with every initialization's scores
    under "restarts". Resuming keeps the finished initializations and resumes the unfinished one."""
    config = config.resolved()
    if config.restarts == 1:
        return train(config, out, resume=resume, quiet=quiet, threads=threads)
    out = Path(out)
    runio.check_output_dir(out, CANDIDATES, "run trained with --restarts", ignored=(".lock",))
    if (out / CANDIDATES).exists() and not resume:
        raise runio.RunError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    with runio.locked(out):
        tried = []
        for init in range(config.restarts):
            if not quiet:
                print(f"initialization {init} ({init + 1} of {config.restarts})", flush=True)
            # resume=True: a new directory starts, an unfinished one resumes, a finished one is
            # only evaluated again (and refused if its settings differ from these)
            results = train(replace(config, init=init), candidate_dir(out, init), resume=True, quiet=quiet,
                            threads=threads)
            tried.append(results)
        kept = max(range(len(tried)), key=lambda init: (tried[init]["val"]["score"], -init))
        for name in KEPT_FILES:
            runio.atomic_write_bytes(out / name, (candidate_dir(out, kept) / name).read_bytes())
        scores = [{"init": init, **{split: results[split]["score"] for split in ("train", "val", "test")},
                   "seconds": results["seconds"]} for init, results in enumerate(tried)]
        results = {**tried[kept], "restarts": scores, "kept_init": kept,
                   "seconds": sum(results["seconds"] for results in tried)}
        runio.write_json(out / "results.json", results)
    return results
