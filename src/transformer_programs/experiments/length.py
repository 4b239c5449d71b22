"""Length generalization: train on content lengths 1..n, test on longer sequences, per task and n."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from itertools import product
from pathlib import Path

from .. import runio
from ..arguments import train_config
from ..config import TrainConfig, task_spec
from ..data import train_split_size
from . import report
from .ledger import Ledger
from .runner import Trial, add_experiment_arguments, int_list, ledger_of, run_command, run_trials

TABLE, SUMMARY, PLOT = "results.csv", "summary.md", "length_generalization.png"
KEYS = ("task", "n")
TRAIN_VAL_SHARE = 0.9  # make_splits' default fractions: train 0.8 + validation 0.1


def is_fixed_length(task: str) -> bool:
    """Dyck strings have one length per split: train at n, test at 2n (the reproduction's setup)."""
    return task.startswith("dyck")


def length_ranges(task: str, n: int, test_extra: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(train lengths, test lengths) for training length n."""
    if is_fixed_length(task):
        return (n, n), (2 * n, 2 * n)
    return (1, n), (n + 1, n + test_extra)


def check_room(config: TrainConfig) -> None:
    """ValueError unless the task and the position range accept the test lengths and, for
    tasks with lengths 1..n, those hold enough unique inputs for the train and validation splits.
    (A Dyck length n with fewer strings than asked for uses them all; the run's notes say so.)"""
    spec = task_spec(config)
    low, high = config.train_lengths
    longest = config.test_lengths[1]
    spec.input_tokens(config.vocab_size, longest)  # the task's own checks of its length limits
    spec.label_tokens(config.vocab_size, longest)
    if config.max_len is not None and config.max_len < spec.seq_len(longest):
        raise ValueError(f"--max-len {config.max_len} leaves no position for the longest {config.task} test "
                         f"sequences ({spec.seq_len(longest)} tokens); drop it or raise it")
    unique = spec.count_inputs(low, high, config.vocab_size)
    needed = int(TRAIN_VAL_SHARE * config.n_examples)
    if not is_fixed_length(config.task) and unique is not None and unique < needed:
        raise ValueError(
            f"--train-max {high} is too small for {config.task}: lengths {low}..{high} give only {unique} "
            f"unique inputs, the train and validation splits need {needed} (90% of --n-examples "
            f"{config.n_examples}); raise n or lower --n-examples"
        )


def step_matched_epochs(config: TrainConfig) -> int:
    """Epochs that give a trial as many optimizer steps as `config.epochs` give a full training
    split: more where the training lengths hold fewer unique inputs than the splits ask for (a
    Dyck length n has at most 2^n strings of one bracket type: dyck1 at n = 10 trains on 910
    strings, two batches an epoch where the task's budget counts 32)."""
    full = math.ceil(train_split_size(config.n_examples, None) / config.batch_size)
    held = math.ceil(training_examples(config) / config.batch_size)
    return math.ceil(config.epochs * full / held)


def training_examples(config: TrainConfig) -> int:
    """How many examples a trial trains on: its share of --n-examples, or fewer where its
    training lengths hold fewer unique inputs."""
    low, high = config.train_lengths
    return train_split_size(config.n_examples, task_spec(config).count_inputs(low, high, config.vocab_size))


def length_trials(
    base: TrainConfig, tasks: list[str], train_max: list[int], test_extra: int, seeds: int
) -> list[Trial]:
    """Every task x n x seed 0..seeds-1, each task at its default model size, validated, its
    epochs matched in optimizer steps to a full training split (step_matched_epochs)."""
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    if test_extra < 1:
        raise ValueError(f"--test-extra must be at least 1, got {test_extra}")
    trials = []
    for task, n, seed in product(tasks, train_max, range(seeds)):
        train_lengths, test_lengths = length_ranges(task, n, test_extra)
        config = replace(base, task=task, seed=seed, train_lengths=train_lengths, test_lengths=test_lengths).resolved()
        check_room(config)
        budget = replace(config, epochs=replace(config, epochs=None).resolved().epochs)  # the task's budget for this training
        protocol = {"epochs": step_matched_epochs(budget)}  # what the protocol runs, for the ledger to judge by
        config = replace(config, epochs=step_matched_epochs(config))
        labels = dict(task=task, n=n, train_lengths="%d-%d" % train_lengths, test_lengths="%d-%d" % test_lengths, seed=seed)
        trials.append(Trial(f"{task}-n{n}-s{seed}", labels, config, "lengthgen", protocol))
    return trials


def length_markdown(rows: list[dict], trials: list[Trial], title: str) -> str:
    """summary.md: per task and n, mean ± std over seeds of train and test accuracy."""
    summaries = report.summarize(rows, KEYS, ("train_accuracy", "test_accuracy"))
    ranges = {(t.labels["task"], t.labels["n"]): t.labels for t in trials}
    table = [
        [
            s["task"],
            s["n"],
            ranges[(s["task"], s["n"])]["train_lengths"],
            ranges[(s["task"], s["n"])]["test_lengths"],
            f"{s['ok']}/{s['trials']}",
            report.percent(s["train_accuracy_mean"], s["train_accuracy_std"]),
            report.percent(s["test_accuracy_mean"], s["test_accuracy_std"]),
        ]
        for s in summaries
    ]
    ok = sum(row["status"] == "ok" for row in rows)
    intro = (
        f"# {title}\n\n{ok} of {len(trials)} trials finished, {len(rows) - ok} failed. Token accuracy in "
        "percent, mean ± std over seeds. Train and validation use content lengths 1..n (Dyck: n), "
        "the test split only longer ones; the model's positions cover the longest test sequence.\n\n"
    )
    header = ["task", "n", "train lengths", "test lengths", "seeds ok", "train", "test"]
    return intro + report.markdown_table(header, table) + report.failures(rows)


def plot_length(rows: list[dict], path: Path, title: str) -> None:
    """Train and test accuracy against n, one line per task, error bars over seeds."""
    summaries = report.summarize(rows, KEYS, ("train_accuracy", "test_accuracy"))
    panels = {}
    for split, name in (("train", "train (lengths up to n)"), ("test", "test (longer than n)")):
        by_task = report.group(summaries, ("task",)).items()
        panels[name] = {task: report.series(group, f"{split}_accuracy", lambda s: s["n"]) for (task,), group in by_task}
    report.plot_errorbars(path, panels, "n (longest training length)", title)


def run_lengthgen(
    base: TrainConfig,
    tasks: list[str],
    train_max: list[int],
    test_extra: int,
    seeds: int,
    out: Path,
    address: str | None = None,
    quiet: bool = False,
    max_trials: int | None = None,
    ledger: Ledger | None = None,
    threads: int = 1,
) -> list[dict]:
    """Run (or resume) a length-generalization study into `out`: results.csv, summary.md and
    length_generalization.png; each finished trial into `ledger`, where a trial it holds is not
    run again."""
    out = Path(out)
    trials = length_trials(base, tasks, train_max, test_extra, seeds)
    rows = run_trials(out, "lengthgen", trials, TABLE, address, quiet, max_trials, ledger, threads)
    title = f"Length generalization ({base.model}): {', '.join(tasks)}, {seeds} seeds"
    runio.atomic_write_text(out / SUMMARY, length_markdown(rows, trials, title))
    plot_length(rows, out / PLOT, title)
    return rows


def add_lengthgen_parser(sub: argparse._SubParsersAction) -> None:
    """The `tprog lengthgen` subcommand."""
    p = sub.add_parser("lengthgen", help="train on lengths 1..n, test on longer ones (Ray Tune)")
    p.add_argument("tasks", metavar="TASK[,TASK...]", help="comma-separated tasks, e.g. hist,sort,dyck1")
    p.add_argument("--train-max", metavar="LIST", default="10,20,30,40", help="values of n (default: 10,20,30,40)")
    p.add_argument("--test-extra", type=int, default=10, help="test lengths n+1..n+K (default: 10; Dyck: 2n)")
    add_experiment_arguments(p, "output directory (default: lengthgen/TASKS)")
    p.set_defaults(func=cmd_lengthgen)


def cmd_lengthgen(args: argparse.Namespace) -> int:
    """`tprog lengthgen`: run or resume a length-generalization study."""

    if args.train_lengths or args.test_lengths:
        raise ValueError("lengthgen sets the lengths itself: use --train-max and --test-extra")
    tasks = list(dict.fromkeys(t.strip() for t in args.tasks.split(",") if t.strip()))
    if not tasks:
        raise ValueError("name at least one task, e.g. tprog lengthgen hist,sort")
    train_max = int_list(args.train_max, "--train-max", 1)
    out = Path(args.out or f"lengthgen/{'+'.join(tasks)}")
    base = train_config(args, tasks[0])

    def run() -> list[dict]:
        return run_lengthgen(base, tasks, train_max, args.test_extra, args.seeds, out, args.address, args.quiet,
                             ledger=ledger_of(args), threads=args.threads)

    return run_command(run, len(tasks) * len(train_max) * args.seeds, out, SUMMARY)
