"""Grid search over layers, heads and MLPs x seeds, with the paper's best-by-validation selection."""

from __future__ import annotations

import argparse
from dataclasses import replace
from itertools import product
from pathlib import Path

from .. import runio
from ..arguments import train_config
from ..config import TrainConfig
from . import report
from .ledger import PAPER_GRID, Ledger, sweep_experiment
from .runner import Trial, add_experiment_arguments, int_list, ledger_of, run_command, run_trials

TABLE, SUMMARY, PLOT = "trials.csv", "summary.md", "sweep.png"
CONFIG_KEYS = ("layers", "heads", "mlps")


def split(count: int, categorical_only: bool) -> tuple[int, int]:
    """(categorical, numerical) parts of `count` heads or MLPs: half each, the odd one categorical."""
    if categorical_only:
        return count, 0
    return (count + 1) // 2, count // 2


def grid_trials(
    base: TrainConfig,
    layers: list[int],
    heads: list[int],
    mlps: list[int],
    seeds: int,
    categorical_only: bool = False,
) -> list[Trial]:
    """Every configuration x seed 0..seeds-1, validated. The standard baseline has one MLP per
    layer, so for it `mlps` must be [1]."""
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    if base.model == "standard" and (mlps != [1] or categorical_only):
        raise ValueError("the standard transformer has one MLP per layer and no categorical/numerical "
                         "split: drop --mlps and --categorical-only")
    trials = []
    for n_layers, n_heads, n_mlps, seed in product(layers, heads, mlps, range(seeds)):
        heads_cat, heads_num = split(n_heads, categorical_only)
        mlps_cat, mlps_num = split(n_mlps, categorical_only or base.model == "standard")
        arch = dict(heads_cat=heads_cat, heads_num=heads_num, mlps_cat=mlps_cat, mlps_num=mlps_num)
        # Resolved (defaults filled in), so a bad flag fails before any trial starts.
        config = replace(base, seed=seed, layers=n_layers, **arch).resolved()
        labels = dict(task=base.task, layers=n_layers, heads=n_heads, mlps=n_mlps, **arch, seed=seed)
        experiment = sweep_experiment(n_layers, n_heads, n_mlps, config)
        trials.append(Trial(f"{base.task}-L{n_layers}-H{n_heads}-M{n_mlps}-s{seed}", labels, config, experiment))
    return trials


def best_configuration(selected: dict[tuple, dict]) -> tuple | None:
    """The configuration whose selected seed has the best validation accuracy; ties go to the
    smaller model (fewer components in all, then fewer layers, heads, MLPs)."""
    if not selected:
        return None

    def rank(key: tuple) -> tuple:
        layers, heads, mlps = key
        return (-selected[key]["val_accuracy"], layers * (heads + mlps), layers, heads, mlps)

    return min(selected, key=rank)


def sweep_markdown(rows: list[dict], trials: list[Trial], title: str) -> str:
    """summary.md: per configuration mean ± std over seeds and the best-by-validation seed."""
    summaries = report.summarize(rows, CONFIG_KEYS, ("val_accuracy", "test_accuracy"))
    selected = report.select_by_validation(rows, CONFIG_KEYS)
    best = best_configuration(selected)
    table = []
    for s in summaries:
        key = tuple(s[k] for k in CONFIG_KEYS)
        pick = selected.get(key, {})
        first = next(row for row in rows if tuple(row[k] for k in CONFIG_KEYS) == key)
        table.append([
            *key,
            f"{first['heads_cat']}+{first['heads_num']}",
            f"{first['mlps_cat']}+{first['mlps_num']}",
            f"{s['ok']}/{s['trials']}",
            report.percent(s["val_accuracy_mean"], s["val_accuracy_std"]),
            report.percent(s["test_accuracy_mean"], s["test_accuracy_std"]),
            pick.get("seed", "-"),
            report.percent(pick.get("val_accuracy")),
            report.percent(pick.get("test_accuracy")),
            "**best**" if key == best else "",
        ])
    header = ["layers", "heads", "mlps", "heads cat+num", "mlps cat+num", "seeds ok", "val", "test",
              "selected seed", "selected val", "selected test", ""]
    ok = sum(row["status"] == "ok" for row in rows)
    lines = [
        f"# {title}\n",
        f"{ok} of {len(trials)} trials finished, {len(rows) - ok} failed. Accuracy in percent, mean ± std "
        "over seeds; *selected* is the seed with the best validation accuracy (the paper's model "
        "selection) and its test accuracy. The best configuration has the highest selected "
        "validation accuracy (ties: the smaller model).\n",
    ]
    if best is not None:
        pick = selected[best]
        scores = f"val {report.percent(pick['val_accuracy'])}, test {report.percent(pick['test_accuracy'])}"
        lines.append(f"**Best: layers {best[0]}, heads {best[1]}, MLPs {best[2]}** (seed {pick['seed']}): {scores}.\n")
    return "\n".join(lines) + "\n" + report.markdown_table(header, table) + report.failures(rows)


def run_sweep(
    base: TrainConfig,
    layers: list[int],
    heads: list[int],
    mlps: list[int],
    seeds: int,
    out: Path,
    categorical_only: bool = False,
    address: str | None = None,
    quiet: bool = False,
    max_trials: int | None = None,
    ledger: Ledger | None = None,
    threads: int = 1,
) -> list[dict]:
    """Run (or resume) a grid search into `out`: trials.csv, summary.md, sweep.png; each finished
    trial into `ledger`, where a trial it holds is not run again."""
    out = Path(out)
    trials = grid_trials(base, layers, heads, mlps, seeds, categorical_only)
    rows = run_trials(out, "sweep", trials, TABLE, address, quiet, max_trials, ledger, threads)
    variant = ", categorical only" if categorical_only else ""
    configurations = len(layers) * len(heads) * len(mlps)
    title = f"Sweep: {base.task} ({base.model}{variant}), {configurations} configurations x {seeds} seeds"
    runio.atomic_write_text(out / SUMMARY, sweep_markdown(rows, trials, title))
    plot_sweep(rows, out / PLOT, title)
    return rows


def plot_sweep(rows: list[dict], path: Path, title: str) -> None:
    """Validation and test accuracy per configuration, error bars over seeds."""
    summaries = report.summarize(rows, CONFIG_KEYS, ("val_accuracy", "test_accuracy"))

    def name(s: dict) -> str:
        return f"L{s['layers']} H{s['heads']} M{s['mlps']}"

    lines = {split: report.series(summaries, f"{split}_accuracy", name) for split in ("val", "test")}
    report.plot_errorbars(path, {"mean ± std over seeds": lines}, "configuration", title)


def add_sweep_parser(sub: argparse._SubParsersAction) -> None:
    """The `tprog sweep` subcommand."""
    p = sub.add_parser("sweep", help="grid search over layers, heads and MLPs x seeds (Ray Tune)")
    p.add_argument("task")
    paper = {key: ",".join(map(str, values)) for key, values in PAPER_GRID.items()}
    p.add_argument("--layers", dest="grid_layers", metavar="LIST", default=paper["layers"],
                   help="layers (default: 2,3, the paper's grid; the reproduction's: 1,2,3,4)")
    p.add_argument("--heads", dest="grid_heads", metavar="LIST", default=paper["heads"],
                   help="heads per layer, half categorical, half numerical (default: 4,8; reproduction: 2,4,8,16)")
    p.add_argument("--mlps", dest="grid_mlps", metavar="LIST",
                   help="MLPs per layer, split like heads (default: 2,4; reproduction: 2,4,8; standard: 1)")
    p.add_argument("--categorical-only", action="store_true", help="all heads and MLPs categorical")
    add_experiment_arguments(p, "sweep directory (default: sweeps/TASK-MODEL)")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    """`tprog sweep`: run or resume a grid search and print where its summary is."""

    default_mlps = "1" if args.model == "standard" else ",".join(map(str, PAPER_GRID["mlps"]))
    grid = [
        int_list(args.grid_layers, "--layers", 1),
        int_list(args.grid_heads, "--heads", 0),
        int_list(args.grid_mlps or default_mlps, "--mlps", 0),
    ]
    out = Path(args.out or f"sweeps/{args.task}-{args.model}")
    base = train_config(args, args.task)

    def run() -> list[dict]:
        return run_sweep(base, *grid, args.seeds, out, args.categorical_only, args.address, args.quiet,
                         ledger=ledger_of(args), threads=args.threads)

    return run_command(run, len(grid[0]) * len(grid[1]) * len(grid[2]) * args.seeds, out, SUMMARY)
