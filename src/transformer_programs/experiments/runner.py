"""Run many training runs as Ray Tune trials, recorded in one CSV table that makes them resumable."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .. import runio
from ..arguments import add_train_arguments
from ..config import LATER_SETTINGS, TrainConfig
from ..progress import Progress
from ..threads import thread_count
from .ledger import PAPER_TRAINING, Ledger, make_record
from .ray_session import check_address, ray_session

RESULT_COLUMNS = ("status", "val_accuracy", "test_accuracy", "train_accuracy", "seconds", "error")
NUMERIC_RESULTS = ("val_accuracy", "test_accuracy", "train_accuracy", "seconds")
PLAN_FILE = "experiment.json"
TRIAL_RETRIES = 2  # times a trial whose process or node died is started again
SHARE_CPUS_UP_TO = 4  # trials per CPU run at once (memory: one model and its data each)
EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception|Interrupt|Exit)(\(\w*\))?: ")  # "ValueError: ..."


@dataclass(frozen=True)
class Trial:
    """One training run of an experiment: its directory name, its table columns and its config."""

    name: str  # directory under OUT/trials and the key of its table row
    labels: dict[str, Any]  # the columns that identify the trial (task, layers, seed, ...)
    config: TrainConfig
    experiment: str | None = None  # its kind in the results ledger (grid, extended, lengthgen), if any
    protocol: dict[str, Any] = field(default_factory=dict)  # settings its experiment's protocol sets by rule


def one_line(error: BaseException) -> str:
    """An error as one line: its type and the first line of its message."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


def run_trial(params: dict, trials: dict[str, tuple[TrainConfig, str]], threads: int = 1) -> dict:
    """Ray Tune function trainable: train one trial into its directory, resuming what is there, on
    `threads` torch threads (Ray gives it as many CPUs: cpus_per_trial)."""
    from ..restarts import train_with_restarts

    config, run_dir = trials[params["trial"]]
    torch.set_num_threads(threads)
    started = time.perf_counter()
    try:
        results = train_with_restarts(config, Path(run_dir), resume=True, quiet=True, threads=threads)
    except Exception as err:  # recorded in the table as a failed trial; the others go on
        runio.atomic_write_text(Path(run_dir) / "error.txt", traceback.format_exc())
        return {"status": "failed", "error": one_line(err), "seconds": time.perf_counter() - started}
    metrics = {f"{split}_accuracy": results[split]["accuracy"] for split in ("train", "val", "test")}
    facts = _run_facts(Path(run_dir), results, config.model == "program")
    return {"status": "ok", "error": "", "seconds": results["seconds"], "threads": results["threads"], **metrics, **facts}


def _run_facts(run_dir: Path, results: dict, is_program: bool) -> dict:
    """What the ledger keeps beside a trial's accuracy: epochs run and kept, the model's hash, and
    the length of its simplified program (generated, not verified: a few seconds, not minutes)."""
    from ..program.decompile import simplified_lines
    from ..runs import model_digest

    facts = {"epochs": results["epochs"], "best_epoch": results["selected_epoch"], "model_sha256": model_digest(run_dir)}
    if not is_program:
        return facts
    try:
        facts["program_lines"] = simplified_lines(run_dir)
    except Exception as err:  # a trained trial is kept; the record says why it has no length
        facts["program_error"] = one_line(err)
    return facts


def _row(trial: Trial, results: dict) -> dict:
    """A table row: the trial's name and labels, then its results."""
    row = {"trial": trial.name, **trial.labels}
    row.update({column: results.get(column, "") for column in RESULT_COLUMNS})
    return row


def read_table(path: Path, trials: list[Trial]) -> dict[str, dict]:
    """Rows already recorded for the planned trials, by trial name, with typed values."""
    if not path.exists():
        return {}
    planned = {trial.name: trial for trial in trials}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    recorded = {}
    for raw in rows:
        trial = planned.get(raw.get("trial", ""))
        if trial is None:
            continue
        results = {k: raw.get(k) or "" for k in RESULT_COLUMNS}
        try:
            results.update({k: float(results[k]) for k in NUMERIC_RESULTS if results[k]})
        except ValueError:
            raise ValueError(f"{path} is corrupt (row of {trial.name}); remove that row to rerun the trial") from None
        recorded[trial.name] = _row(trial, results)
    return recorded


def check_plan(out: Path, kind: str, trials: list[Trial]) -> None:
    """Record the experiment's plan in OUT, or raise ValueError if OUT holds a different one."""
    plan = {"kind": kind, "trials": {trial.name: asdict(trial.config) for trial in trials}}
    plan = json.loads(json.dumps(plan))  # tuples as lists, as they read back
    path = out / PLAN_FILE
    if path.exists():
        saved = _with_later_settings(runio.read_json(path))
        if saved != plan:
            raise ValueError(f"{out} holds a different experiment ({_difference(saved, plan)}); "
                             "rerun the command that made it to resume, or choose another --out")
    runio.write_json(path, plan)


def _with_later_settings(plan: dict) -> dict:
    """A saved plan with each setting added since it was saved at the value it then had."""
    trials = plan.get("trials")
    if isinstance(trials, dict):
        plan["trials"] = {name: {**LATER_SETTINGS, **config} if isinstance(config, dict) else config
                          for name, config in trials.items()}
    return plan


def _difference(saved: dict, plan: dict) -> str:
    """What first differs between two plans, in a few words."""
    if saved.get("kind") != plan["kind"]:
        return f"a {saved.get('kind')} experiment, not a {plan['kind']}"
    old, new = saved.get("trials", {}), plan["trials"]
    missing, extra = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    if missing:
        return f"it has no trial {missing[0]}"
    if extra:
        return f"it has a trial {extra[0]} that this command does not plan"
    for name, config in new.items():
        changed = [key for key in config if old[name].get(key) != config[key]]
        if changed:
            key = changed[0]
            return f"{key} {old[name].get(key)!r} there, {config[key]!r} here"
    return "another plan"


def ledger_rows(ledger: Ledger | None, trials: list[Trial]) -> dict[str, dict]:
    """Table rows of the trials the ledger already holds, by trial name."""
    rows = {}
    for trial in trials if ledger is not None else []:
        if trial.experiment:
            record = ledger.find(trial.experiment, trial.config.task, trial.name, trial.config)
            if record is not None:
                rows[trial.name] = _row(trial, {"status": "ok", "error": "", **record})
    return rows


class _Recorder:
    """Driver-side Tune callback target: adds each finished trial to the table (and its record to
    the ledger) as it finishes."""

    def __init__(self, path: Path, trials: list[Trial], rows: dict[str, dict], quiet: bool, done: int,
                 ledger: Ledger | None = None):
        self.path, self.trials, self.rows, self.ledger = path, trials, rows, ledger
        self.by_name = {trial.name: trial for trial in trials}
        self.bar = Progress("trials", len(trials), quiet, initial=done)

    def record(self, name: str, results: dict) -> None:
        """Add (or replace) one trial's row, rewrite the table atomically, add a finished trial's
        record to the ledger, update the progress."""
        trial = self.by_name[name]
        self.rows[name] = _row(trial, results)
        self.write()
        if self.ledger is not None and trial.experiment and results.get("status") == "ok":
            self.ledger.add(make_record(trial.experiment, name, trial.labels, trial.config, results, trial.protocol))
        ok = [row for row in self.rows.values() if row["status"] == "ok"]
        best = max(ok, key=lambda row: row["val_accuracy"]) if ok else None
        self.bar.update(1, f"best {best['trial']}, val {best['val_accuracy']:.4f}" if best else None)

    def write(self) -> None:
        """The table in plan order."""
        runio.write_csv(self.path, [self.rows[t.name] for t in self.trials if t.name in self.rows])


def _callback(recorder: _Recorder):
    """A Tune callback that hands finished and crashed trials to `recorder`."""
    from ray.tune import Callback

    class Record(Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            recorder.record(trial.config["trial"], trial.last_result)

        def on_trial_error(self, iteration, trials, trial, **info):
            # The trainable catches exceptions itself: this is a dead process (OOM kill, crash),
            # described in the error file Tune has just written beside the trial.
            path = Path(trial.error_file) if trial.error_file else None
            text = path.read_text(errors="replace") if path and path.exists() else ""
            lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Failure #")]
            raised = [line for line in lines if EXCEPTION_LINE.match(line)]
            detail = raised[-1] if raised else (lines[0] if lines else "no error file")
            recorder.record(trial.config["trial"], {"status": "failed", "error": f"trial process died: {detail}"})

    return Record()


def run_trials(
    out: Path,
    kind: str,
    trials: list[Trial],
    table: str,
    address: str | None = None,
    quiet: bool = False,
    max_trials: int | None = None,
    ledger: Ledger | None = None,
    threads: int = 1,
) -> list[dict]:
    """Run every trial not yet recorded as finished in OUT/`table` or in `ledger`; return the
    table's rows.

    Each trial trains into OUT/trials/NAME (resuming a half-trained one) on `threads` torch
    threads, as many Ray CPUs (a trial started on one number resumes on another); rows are
    written, atomically, as trials finish, so a killed experiment rerun with the same command
    loses no finished trial. Failed trials are recorded with their error and tried again on the
    next run. Each finished trial also goes to `ledger`, and a trial the ledger holds is not run
    again, whichever directory ran it. `max_trials` stops after launching that many (tests use it
    to simulate a kill).
    """
    out = Path(out)
    threads = thread_count(threads)  # refused before anything is written, as is a cluster that does not answer
    check_address(address)
    runio.check_output_dir(out, PLAN_FILE, f"experiment (no {PLAN_FILE})")
    out.mkdir(parents=True, exist_ok=True)
    check_plan(out, kind, trials)
    rows = {**read_table(out / table, trials), **ledger_rows(ledger, trials)}
    pending = [t for t in trials if rows.get(t.name, {}).get("status") != "ok"][:max_trials]
    recorder = _Recorder(out / table, trials, rows, quiet, len(trials) - len(pending), ledger)
    recorder.write()
    if pending:
        _fit(out, pending, recorder, address, threads)
    recorder.bar.close()
    return [rows[t.name] for t in trials if t.name in rows]


def cpus_per_trial(trials: int, cpus: float, threads: int = 1) -> float:
    """Ray CPUs each trial asks for: one per torch thread it trains on (ValueError where that is more
    than the cluster has). One-thread trials, up to SHARE_CPUS_UP_TO per CPU, all start at once
    instead, sharing the CPUs evenly, so that none waits for a last short wave while a CPU idles
    (5 seeds on 2 CPUs: 2.5 trial-times, not 3)."""
    if threads > cpus:
        raise ValueError(f"--threads {threads} asks each trial for {threads} CPUs and the Ray cluster has "
                         f"{cpus:g}; lower --threads")
    if threads > 1 or trials <= cpus or trials > SHARE_CPUS_UP_TO * cpus:
        return float(threads)
    return cpus / trials


def _with_absolute_paths(config: TrainConfig) -> TrainConfig:
    """The config with its file paths resolved here: Ray runs each trial in another directory."""
    paths = {name: str(Path(getattr(config, name)).resolve()) for name in ("data_dir", "embeddings")
             if getattr(config, name)}
    return replace(config, **paths)


def _fit(out: Path, pending: list[Trial], recorder: _Recorder, address: str | None, threads: int) -> None:
    """Run `pending` as one Ray Tune experiment, each trial on `threads` threads and the CPUs
    cpus_per_trial gives it, recording as they finish."""
    import ray
    from ray import tune

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the new console output ignores verbose=0
    # Tune's warnings on Ctrl-C point to Tuner.restore; here rerunning the command resumes.
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    specs = {t.name: (_with_absolute_paths(t.config), str((out / "trials" / t.name).resolve())) for t in pending}
    with ray_session(address):
        share = cpus_per_trial(len(pending), ray.cluster_resources().get("CPU", 1), threads)
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(run_trial, trials=specs, threads=threads), {"cpu": share}),
            param_space={"trial": tune.grid_search(list(specs))},
            tune_config=tune.TuneConfig(trial_dirname_creator=lambda trial: trial.config["trial"]),
            run_config=tune.RunConfig(
                storage_path=str((out / ".tune").resolve()),
                name="trials",
                verbose=0,
                callbacks=[_callback(recorder)],
                # A trial whose process or node died (a cluster node lost) runs again elsewhere,
                # resuming from its checkpoint; its row and ledger record are written once, at the end.
                failure_config=tune.FailureConfig(max_failures=TRIAL_RETRIES),
            ),
        )
        tuner.fit()


def int_list(text: str, flag: str, minimum: int) -> list[int]:
    """Comma-separated integers, each at least `minimum`, without repeats; ValueError naming `flag`."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"{flag} needs at least one value, e.g. {flag} 1,2,3")
    try:
        values = [int(item) for item in items]
    except ValueError:
        raise ValueError(f"{flag} takes comma-separated integers, got {text!r}") from None
    if min(values) < minimum:
        raise ValueError(f"{flag} values must be at least {minimum}, got {min(values)}")
    return list(dict.fromkeys(values))


def run_command(run: Callable[[], list[dict]], total: int, out: Path, summary: str) -> int:
    """Run an experiment for the CLI and say how it ended: 0 when every trial finished."""
    try:
        rows = run()
    except KeyboardInterrupt:
        print("tprog: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    ok = sum(row["status"] == "ok" for row in rows)
    failed = len(rows) - ok
    print(f"{out}: {ok} of {total} trials finished, {failed} failed; see {out / summary}")
    if ok < total:
        print("run the same command again to retry failed and unfinished trials", file=sys.stderr)
        return 1
    return 0


def ledger_of(args) -> Ledger | None:
    """The ledger the flags name, or None under --no-ledger."""
    if args.no_ledger:
        return None
    if not args.ledger.strip():
        raise ValueError("--ledger needs a directory (default: results); use --no-ledger to keep no records")
    root = Path(args.ledger)
    if root.exists() and not root.is_dir():
        raise ValueError(f"--ledger {args.ledger} is a file; pass the ledger's directory (default: results)")
    return Ledger(root)


def add_experiment_arguments(parser, out_help: str) -> None:
    """The flags every Ray experiment shares: seeds, output directory, cluster, training flags."""

    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 for each setting (default: 5)")
    parser.add_argument("--out", help=f"{out_help}: new, empty, or an earlier run of the same experiment; "
                        "rerun the same command to resume")
    parser.add_argument("--address", help="Ray cluster to join (default: start Ray on this machine); "
                        "--out must then be on storage every node sees")
    parser.add_argument("--ledger", default="results", metavar="DIR",
                        help="results ledger: a record per finished trial is added here, and a trial it holds is "
                        "not run again (default: results)")
    parser.add_argument("--no-ledger", action="store_true", help="neither read nor add ledger records")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per trial, each trial taking as many Ray CPUs (default 1: a trial per "
                        "core). Only on an otherwise idle machine: 2 trains a length trial at n = 40 about 1.6x "
                        "faster (benchmarks/cell_threads.py), and a second thread beside other work runs slower")
    add_train_arguments(parser)
    # The reproduction's experiments train as the paper did: no gates, free classifier weights.
    parser.set_defaults(**PAPER_TRAINING)
