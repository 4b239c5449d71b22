"""The results ledger: one small JSON record per finished trial, kept in a directory that is
committed with the project, so that a protocol of many core-hours runs across sessions and
machines. `tprog sweep` and `tprog lengthgen` skip every trial whose record is there and add
one as each trial finishes; the tables and figures of docs/results.md are generated from it.

A record is found by what the trial is: its experiment, task, trial name and a hash of every
setting of its run. The same trial run twice (another session, a retried trial, a second node)
writes the same file, so nothing is ever counted twice; a trial with other settings (fewer
epochs, say) is another record, and the tables mark it as off the protocol.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from .. import __version__, runio
from ..config import ARCH_FIELDS, LATER_SETTINGS, TAU_START, TrainConfig
from ..tasks import UnknownTaskError, get_task

EXPERIMENTS = ("grid", "extended", "lengthgen")
# The protocol trains as the paper did: no gates, free classifier weights, its initial temperature.
PAPER_TRAINING = {"sparsity": 0.0, "classifier_step": 0.0, "tau_start": TAU_START}
PAPER_GRID = {"layers": (2, 3), "heads": (4, 8), "mlps": (2, 4)}  # Friedman et al., appendix
PAPER_EPOCHS = 250  # the paper's, every task; a task's own budget stands in where it reaches the same accuracy
RESULT_FIELDS = ("val_accuracy", "test_accuracy", "train_accuracy", "epochs", "best_epoch", "seconds", "threads",
                 "program_lines", "program_error", "model_sha256")  # what a trial reports, as recorded
NOT_HASHED = ("data_dir", "embeddings")  # where the data lies on one machine, not what it is
REQUIRED = {
    "experiment": str, "task": str, "trial": str, "key": str, "layers": int, "heads": int, "mlps": int,
    "seed": int, "val_accuracy": float, "test_accuracy": float, "train_accuracy": float, "config": dict,
}
FRACTIONS = ("val_accuracy", "test_accuracy", "train_accuracy")  # recorded as fractions, never percents


def config_key(config: TrainConfig) -> str:
    """A short hash of every setting of a resolved run (the machine's data paths aside; a setting
    added later, at the value older runs had, is left out, so that a recorded trial is still found)."""
    settings = {k: v for k, v in asdict(config).items()
                if k not in NOT_HASHED and not (k in LATER_SETTINGS and v == LATER_SETTINGS[k])}
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def sweep_experiment(layers: int, heads: int, mlps: int, config: TrainConfig) -> str:
    """`grid` for a configuration of the paper's grid (heads and MLPs split half categorical, half
    numerical), else `extended` (the reproduction study's larger grid, or any other)."""
    in_grid = layers in PAPER_GRID["layers"] and heads in PAPER_GRID["heads"] and mlps in PAPER_GRID["mlps"]
    split = config.heads_num == heads // 2 and config.mlps_num == mlps // 2
    return "grid" if in_grid and split and config.model == "program" else "extended"


def off_protocol(config: TrainConfig, protocol: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings of `config` that are not its task's defaults, apart from what an experiment
    varies (architecture, seed, lengths) and what its protocol sets by rule (`protocol`, such as
    length generalization's step-matched epochs): {} for a trial run at the protocol. Where no
    rule sets them, the paper's own 250 epochs are the protocol too (a task's budget is the
    shortcut where it reaches the same accuracy)."""
    varied = {name: getattr(config, name) for name in (*ARCH_FIELDS, "seed", "model", "train_lengths", "test_lengths")}
    default = replace(TrainConfig(task=config.task, **PAPER_TRAINING), **varied).resolved()
    default = replace(default, **(protocol or {}))
    if config.epochs == PAPER_EPOCHS and "epochs" not in (protocol or {}):
        default = replace(default, epochs=PAPER_EPOCHS)
    mine, theirs = asdict(config), asdict(default)
    return {name: mine[name] for name in mine if name not in NOT_HASHED and mine[name] != theirs[name]}


class Ledger:
    """The records under one directory: RESULTS/EXPERIMENT/TASK/TRIAL-KEY.json."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, experiment: str, task: str, trial: str, config: TrainConfig) -> Path:
        """Where the record of this trial lies (whether or not it is there yet)."""
        return self._file(experiment, task, trial, config_key(config))

    def _file(self, experiment: str, task: str, trial: str, key: str) -> Path:
        """RESULTS/EXPERIMENT/TASK/TRIAL-KEY.json: the one place a trial's record may lie."""
        if experiment not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {experiment!r}; the ledger holds {', '.join(EXPERIMENTS)}")
        return self.root / experiment / task / f"{trial}-{key}.json"

    def find(self, experiment: str, task: str, trial: str, config: TrainConfig) -> dict | None:
        """The record of this trial, or None; ValueError naming a record that is not valid."""
        path = self.path(experiment, task, trial, config)
        return read_record(path) if path.is_file() else None

    def add(self, record: dict) -> Path:
        """Write one record atomically (replacing the same trial's earlier record); its path."""
        check_record(record, "record")
        config = TrainConfig.from_dict(record["config"])
        path = self.path(record["experiment"], record["task"], record["trial"], config)
        path.parent.mkdir(parents=True, exist_ok=True)
        runio.atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")
        return path

    def records(self, experiment: str | None = None) -> list[dict]:
        """Every record (of one experiment), in path order; ValueError naming an invalid file, or a
        record not at its own path (copied or moved, it would count its trial twice). Only the
        files where records lie (EXPERIMENT/TASK/*.json) are read."""
        paths = sorted(path for name in ([experiment] if experiment else EXPERIMENTS)
                       for path in (self.root / name).glob("*/*.json"))
        records = [read_record(path) for path in paths]
        for path, record in zip(paths, records):
            own = self._file(record["experiment"], record["task"], record["trial"], record["key"])
            if path != own:
                raise ValueError(f"{path} holds the record of {own.relative_to(self.root)}: a copied or moved "
                                 "record counts its trial twice; move it back or delete it")
        return records


def read_record(path: Path) -> dict:
    """One record from its file, checked."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a valid ledger record ({type(err).__name__}); "
                         "delete it to run its trial again") from None
    check_record(record, str(path))
    return record


def check_record(record: object, where: str) -> None:
    """ValueError naming the first required field of a record that is missing or mistyped."""
    if not isinstance(record, dict):
        raise ValueError(f"{where} is not a JSON object; delete it to run its trial again")
    for name, kind in REQUIRED.items():
        value = record.get(name)
        ok = isinstance(value, (int, float)) if kind is float else isinstance(value, kind)
        if not ok or isinstance(value, bool):
            raise ValueError(f"{where}: field {name!r} must be {kind.__name__}, got {value!r}; "
                             "delete the file to run its trial again")
    if record["experiment"] not in EXPERIMENTS:
        raise ValueError(f"{where}: unknown experiment {record['experiment']!r}")
    try:
        get_task(record["task"])
    except UnknownTaskError:
        raise ValueError(f"{where}: unknown task {record['task']!r}; delete the file or fix its task") from None
    for name in FRACTIONS:
        if not 0 <= record[name] <= 1:
            raise ValueError(f"{where}: field {name!r} is {record[name]!r}, not a fraction in [0, 1] "
                             "(the ledger records accuracies as fractions); delete the file to run its trial again")


def make_record(experiment: str, trial: str, labels: dict, config: TrainConfig, results: dict,
                protocol: dict[str, Any] | None = None) -> dict:
    """The record of a finished trial: what it was (labels, every setting) and what it gave;
    `protocol`: the settings its experiment's protocol sets by rule (see off_protocol)."""
    heads = labels.get("heads", config.heads_cat + config.heads_num)
    mlps = labels.get("mlps", config.mlps_cat + config.mlps_num)
    record = {
        "experiment": experiment,
        "task": config.task,
        "trial": trial,
        "key": config_key(config),
        "layers": config.layers,
        "heads": heads,
        "mlps": mlps,
        "seed": config.seed,
        "off_protocol": off_protocol(config, protocol),
        **{name: results[name] for name in RESULT_FIELDS if name in results},
        "version": __version__,
        "config": json.loads(json.dumps(asdict(config))),
    }
    if experiment == "lengthgen":
        record["train_max"] = labels["n"]
        record["train_lengths"], record["test_lengths"] = list(config.train_lengths), list(config.test_lengths)
    return record
