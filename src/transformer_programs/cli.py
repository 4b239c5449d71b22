"""The `tprog` command: list tasks, train, evaluate, decompile and run programs, run experiments."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__
from .arguments import add_arch_arguments, add_train_arguments, train_config
from .config import MAX_SEED

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, the status of a command whose reader closed the pipe
MAX_SEEDS = 100  # seeds one `train --seeds` trains
SHOWN_LINES = 150  # `tprog prune` prints the pruned program when it is at most this long


def cmd_tasks(args: argparse.Namespace) -> int:
    from .config import TrainConfig
    from .tasks import NLP_TASKS, TASKS

    def row(name: str, task, description: str, embeddings: str = "") -> str:
        config = TrainConfig(task=name).resolved()  # what `tprog train` would run
        values = f", {config.d_values} values" if config.d_values else ""
        target = f" above {config.target_parts} parts" if config.target_parts else ""
        gates = f", gates {config.sparsity:g}{target}" if config.sparsity else ""
        step = f", classifier step {config.classifier_step:g}" if config.classifier_step else ""
        restarts = f", best of {config.restarts} starts" if config.restarts > 1 else ""
        arch = (f"{config.layers}L / {config.heads_cat}+{config.heads_num} / {config.mlps_cat}+{config.mlps_num}, "
                f"{config.attention}{embeddings}{values}{gates}{step}{restarts}")
        span = f"{task.min_len}-{task.max_len}"
        return (f"{name:<15} {config.vocab_size:>5} {span:>8} {str(task.causal):>6} {config.epochs:>6} "
                f"{config.tau_start:>9g} {config.tau_end:>7g}  {arch:<46} {description}")

    header = "model (L / heads cat+num / mlps cat+num)"
    print(f"{'task':<15} {'vocab':>5} {'lengths':>8} {'causal':>6} {'epochs':>6} {'tau start':>9} {'tau end':>7}  {header:<46} description")
    for name, spec in TASKS.items():
        print(row(name, spec, spec.description))
    print("\nword tasks (words kept, words per text; data from --data-dir, an installed package or the HF hub):")
    for name, task in NLP_TASKS.items():
        described = f"{task.description}; --data-dir holds {task.files}"
        print(row(name, task, described, f", {task.model.n_embed_vars} embeddings"))
    return 0


def print_results(results: dict, out: Path) -> None:
    parts = [f"{split} {results[split]['accuracy']:.4f}" for split in ("train", "val", "test")]
    exact = f"test exact-match {results['test']['exact_match']:.4f}"
    seconds = results.get("seconds_per_epoch")
    timing = f", {seconds:.3f} s/epoch" if seconds is not None else ""
    kept = ""
    if "selected_epoch" in results:
        stopped = " (stopped early)" if results.get("stopped_early") else ""
        kept = f"; kept epoch {results['selected_epoch']} of {results['epochs']}{stopped} (best validation)"
    print(f"{out}: accuracy " + ", ".join(parts) + f"; {exact}{timing}{kept}")
    if "restarts" in results:
        scores = ", ".join(f"{row['init']}: {row['val']:.4f}" for row in results["restarts"])
        print(f"kept initialization {results['kept_init']}, the best by validation ({scores})")
    for note in results.get("notes", []):
        print(f"note: {note}")


def seed_list(text: str) -> list[int]:
    """Seeds written `A-B` (A to B) or `A,B,C`."""
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            seeds = list(range(low, high + 1))
        else:
            seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds {text!r} must look like 0-4 or 0,2,5") from None
    if not seeds or min(seeds) < 0 or max(seeds) > MAX_SEED:
        raise argparse.ArgumentTypeError(f"seeds {text!r} name no seed, or one outside 0..{MAX_SEED}")
    if len(seeds) > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"seeds {text!r} name {len(seeds)} seeds; at most {MAX_SEEDS} train at once")
    return list(dict.fromkeys(seeds))


def cmd_train_seeds(args: argparse.Namespace) -> int:
    from .experiments.seeds import run_seeds

    args.resume_hint = "run the same command again: finished seeds are kept, unfinished ones resume"
    out = Path(args.out if args.out is not None else f"runs/{args.task}-seeds")
    rows, best = run_seeds(train_config(args, args.task), args.seeds, out, quiet=args.quiet)
    for row in rows:
        detail = f"val {row['val_accuracy']:.4f}, test {row['test_accuracy']:.4f}" if row["status"] == "ok" else row["error"]
        print(f"seed {row['seed']}: {detail}")
    if best is None:
        print("tprog: no seed finished", file=sys.stderr)
        return 1
    print(f"kept by validation: {best}")
    failed = len(args.seeds) - sum(row["status"] == "ok" for row in rows)
    status = decompile_and_report(best, None, args.quiet, threads=args.threads) if args.program else 0
    return 1 if failed else status


def cmd_train(args: argparse.Namespace) -> int:
    from .restarts import train_with_restarts

    if args.seeds is not None:
        return cmd_train_seeds(args)
    if args.out == "":
        raise ValueError("--out is empty; name a run directory or leave --out out for runs/TASK-seedS")
    if args.program and args.model != "program":
        raise ValueError(f"--program decompiles Transformer Programs; a --model {args.model} run has no program")
    out = Path(args.out if args.out is not None else f"runs/{args.task}-seed{args.seed}")
    results = train_with_restarts(train_config(args, args.task), out, resume=args.resume, quiet=args.quiet,
                                  threads=args.threads)
    print_results(results, out)
    if args.program:
        return decompile_and_report(out, None, args.quiet, threads=args.threads)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .program.decompile import check_program_current
    from .runs import load_run
    from .train import evaluate_split

    check_program_current(Path(args.run_dir))
    run = load_run(Path(args.run_dir))
    data = run.dataset
    results = {name: evaluate_split(run.model, data, name) for name in ("train", "val", "test")}
    print_results(results, Path(args.run_dir))
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def decompile_and_report(run_dir: Path, out: Path | None, quiet: bool = False, final_dir: Path | None = None,
                         threads: int | None = None) -> int:
    """Decompile a run on `threads` torch threads and print what was written; `final_dir`: where the
    run will lie once moved into place (a pruned run is decompiled in a staging directory), for the
    paths printed."""
    from .analysis.run_files import proof_line
    from .program.decompile import decompile_run

    record = decompile_run(run_dir, out, quiet=quiet, threads=threads)
    for report in record["programs"].values():
        print(f"{report['path']}: {report['lines']} lines ({report['code_lines']} of code), {proof_line(record, report)}")
    if record["disagreements"]:
        first = next(r["first_disagreement"] for r in record["programs"].values() if r["first_disagreement"])
        print(f"tprog: a program disagrees with the model; nothing was replaced (see {run_dir}/verification-failed.json); "
              f"smallest input: {first['tokens']}", file=sys.stderr)
        return 1
    accuracy = record["program_accuracy"]
    print(f"program accuracy val {accuracy['val']:.4f}, test {accuracy['test']:.4f}")
    if record["embeddings"]:
        from .api import load

        print(f"feature functions written to {(final_dir or run_dir) / load(run_dir).features().name}")
    return 0


def cmd_decompile(args: argparse.Namespace) -> int:
    return decompile_and_report(Path(args.run_dir), Path(args.out) if args.out else None, args.quiet,
                                threads=args.threads)


def cmd_predict(args: argparse.Namespace) -> int:
    from .program.decompile import predict_run

    print(" ".join(predict_run(Path(args.run_dir), args.tokens)))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from . import runio
    from .analysis.run_files import pruning_line
    from .prune import PruneConfig, prune

    config = PruneConfig(max_drop=args.max_drop, finetune_epochs=args.finetune_epochs, seed=args.seed)
    out = Path(args.out)
    status = []

    def report_and_decompile(staged: Path) -> None:
        """Say what pruning kept, then decompile the pruned run before it is moved into place."""
        print(f"{out}: {pruning_line(runio.read_json(staged / 'results.json'))}")
        status.append(decompile_and_report(staged, None, args.quiet, final_dir=out, threads=args.threads))

    prune(Path(args.run_dir), out, config, quiet=args.quiet, finish=report_and_decompile, threads=args.threads)
    if status[0] == 0:
        from .program.decompile import simplified_lines

        lines_before = simplified_lines(Path(args.run_dir))
        program = (out / "program.py").read_text(encoding="utf-8")
        print(f"program lines: {lines_before} before pruning (simplified), {program.count(chr(10))} after")
        if program.count("\n") <= SHOWN_LINES:
            print(f"\n{out / 'program.py'}:\n\n{program}", end="")
    return status[0]


def program_named(simplified: bool) -> str:
    """Which written program a command's part names come from: trace, circuit and errors read the
    full program unless --simplified, and the two name their parts differently."""
    return "program.py (the simplified program)" if simplified else "program_full.py (--simplified: program.py)"


def cmd_trace(args: argparse.Namespace) -> int:
    from .api import load

    traced = load(args.run_dir).trace(args.tokens, simplified=args.simplified)
    print(json.dumps(traced.to_json(), indent=2) if args.json else traced.table())
    return 0


def cmd_circuit(args: argparse.Namespace) -> int:
    from .api import load

    run = load(args.run_dir)
    graph = run.circuit(args.split, simplified=args.simplified)
    out = run.write_circuit(graph, args.out)
    print(json.dumps(graph.to_json(), indent=2) if args.json else graph.text())
    print(f"graph written to {out}; parts named as in {program_named(args.simplified)}", file=sys.stderr)
    return 0


def cmd_errors(args: argparse.Namespace) -> int:
    from .api import load

    if args.limit < 0:
        raise ValueError(f"--limit must be 0 or more groups, got {args.limit}")
    groups = load(args.run_dir).errors(args.split, simplified=args.simplified)
    if args.json:
        print(json.dumps([group.to_json() for group in groups], indent=2))
        return 0
    total = sum(group.count for group in groups)
    print(f"{total} mistaken positions on {args.split} in {len(groups)} groups (count, part, branch), "
          f"parts named as in {program_named(args.simplified)}:")
    for group in groups[: args.limit]:
        print(group.summary())
    if groups:
        print(f"\ntrace of the largest group's example:\n{groups[0].trace.table()}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .api import load

    print(load(args.run_dir).report(args.out))
    return 0


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """--threads: torch threads for one run's training, pruning or proof."""
    parser.add_argument("--threads", type=int, help="torch threads (default: OMP_NUM_THREADS if set, else 1: on an "
                        "idle machine a second thread saves at most a quarter on the tasks' default models and about "
                        "a third on the length protocol's largest, and beside any other load it costs 3-5x)")


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as every other error of tprog is."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"tprog: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="tprog", description=__doc__)
    parser.add_argument("--version", action="version", version=f"tprog {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("tasks", help="list the tasks and their defaults").set_defaults(func=cmd_tasks)

    p = sub.add_parser("train", help="train one run and write its run directory")
    p.add_argument("task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=seed_list, help="several seeds at once, e.g. 0-4 (one thread each, on Ray, "
                   "sharing the CPUs), each in OUT/trials/TASK-seedS; the best by validation is kept (and "
                   "decompiled with --program, its proof on --threads)")
    p.add_argument("--out", help="run directory (default: runs/TASK-seedS, or runs/TASK-seeds with --seeds)")
    p.add_argument("--resume", action="store_true", help="continue a killed run from its last epoch")
    p.add_argument("--program", action="store_true", help="decompile and verify the program at the end")
    add_threads_argument(p)
    add_train_arguments(p)
    add_arch_arguments(p)
    p.set_defaults(func=cmd_train, resume_hint="add --resume to the same command to continue from the last epoch")

    p = sub.add_parser("eval", help="re-evaluate a saved run")
    p.add_argument("run_dir")
    p.add_argument("--json", action="store_true", help="also print the full results as JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("decompile", help="write and verify the program of a run")
    p.add_argument("run_dir")
    p.add_argument("--out", help="program file (default: RUN_DIR/program.py)")
    p.add_argument("--quiet", action="store_true", help="no progress")
    add_threads_argument(p)
    p.set_defaults(func=cmd_decompile)

    p = sub.add_parser("prune", help="remove parts of a trained run, into a new run with a shorter program")
    p.add_argument("run_dir")
    p.add_argument("--out", required=True, help="the new run directory (must not exist or be empty)")
    p.add_argument("--max-drop", type=float, default=0.001,
                   help="validation accuracy (absolute) the pruned model may lose (default 0.001)")
    p.add_argument("--finetune-epochs", type=int, default=10,
                   help="epochs of fine-tuning after each progressive step (default 10; 0: greedy removal only)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fine-tunings' samples")
    add_threads_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_prune, resume_hint="nothing was written; run the same command again")

    p = sub.add_parser("predict", help="run a run's program on tokens")
    p.add_argument("run_dir")
    p.add_argument("tokens", nargs="+")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("trace", help="every variable at every position of one input, and what each head read")
    p.add_argument("run_dir")
    p.add_argument("tokens", nargs="+")
    p.add_argument("--simplified", action="store_true", help="trace the simplified program (default: the full one)")
    p.add_argument("--json", action="store_true", help="print JSON for tools instead of a table")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("circuit", help="the program's dependency graph, each part scored by ablation")
    p.add_argument("run_dir")
    p.add_argument("--split", default="val", choices=("train", "val", "test"), help="where ablations are scored")
    p.add_argument("--out", help="SVG image of the graph (default: RUN_DIR/circuit.svg)")
    p.add_argument("--simplified", action="store_true", help="the simplified program's circuit (default: the full one)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_circuit)

    p = sub.add_parser("errors", help="the program's mistakes, grouped by the branch that chose the wrong value")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--limit", type=int, default=20, help="groups to print (default 20)")
    p.add_argument("--simplified", action="store_true", help="the simplified program's mistakes and traces")
    p.add_argument("--json", action="store_true", help="print every group as JSON, with its example's trace")
    p.set_defaults(func=cmd_errors)

    p = sub.add_parser("report", help="one self-contained HTML page about a run")
    p.add_argument("run_dir")
    p.add_argument("--out", help="HTML file (default: RUN_DIR/report.html)")
    p.set_defaults(func=cmd_report)

    from .experiments.ledger_tables import add_results_parser
    from .experiments.length import add_lengthgen_parser
    from .experiments.sweep import add_sweep_parser

    add_sweep_parser(sub)
    add_lengthgen_parser(sub)
    add_results_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `tprog`: user errors end with one line and exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader of stdout stopped (`tprog tasks | head`): stop quietly, as `cat` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the flush at exit is silent too
        return EXIT_BROKEN_PIPE
    except (ValueError, OSError) as err:
        if os.environ.get("TPROG_DEBUG"):
            raise
        print(f"tprog: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"tprog: interrupted; {getattr(args, 'resume_hint', 'nothing was left half-written')}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
