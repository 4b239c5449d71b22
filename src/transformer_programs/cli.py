"""The `tprog` command: list tasks, train, evaluate, decompile and run programs, run experiments."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .model.program_model import ATTENTION_KINDS
from .train import ARCH_FIELDS, TrainConfig

EXIT_USAGE = 2


def lengths(text: str) -> tuple[int, int]:
    """A content-length range written `A-B` (or a single `N` for N-N)."""
    try:
        low, _, high = text.partition("-")
        pair = (int(low), int(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"length range {text!r} must look like 1-10") from None
    if pair[0] < 1 or pair[0] > pair[1]:
        raise argparse.ArgumentTypeError(f"length range {text!r} needs 1 <= A <= B")
    return pair


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by every command that trains (train, sweep, lengthgen)."""
    parser.add_argument("--model", default="program", help="program (default) or standard (baseline)")
    parser.add_argument("--epochs", type=int, help="default: 250 (program), 100 (standard)")
    parser.add_argument("--lr", type=float, help="default: 5e-2 (program), 3e-4 (standard)")
    parser.add_argument("--batch-size", type=int, help="default: 512 (program), 50 (standard)")
    parser.add_argument("--tau-start", type=float, default=3.0, help="initial Gumbel temperature")
    parser.add_argument("--tau-end", type=float, default=0.01, help="final Gumbel temperature")
    parser.add_argument("--n-examples", type=int, default=20000, help="unique examples, split 80/10/10")
    parser.add_argument("--vocab-size", type=int, help="content symbols (default: the task's, see `tprog tasks`)")
    parser.add_argument("--train-lengths", type=lengths, help="content lengths of train/val, e.g. 1-10")
    parser.add_argument("--test-lengths", type=lengths, help="content lengths of test, e.g. 11-20")
    parser.add_argument("--max-len", type=int, help="position range (default: longest sequence)")
    parser.add_argument("--reverse-sum", action="store_true", help="addition: least significant digit first")
    parser.add_argument("--n-embed-vars", type=int, default=0, help="learned categorical embeddings")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_arch_arguments(parser: argparse.ArgumentParser) -> None:
    """Per-layer sizes; default: the task's best configuration from the paper."""
    parser.add_argument("--layers", type=int)
    parser.add_argument("--heads-cat", type=int, help="categorical attention heads per layer")
    parser.add_argument("--heads-num", type=int, help="numerical attention heads per layer")
    parser.add_argument("--mlps-cat", type=int, help="categorical MLPs per layer")
    parser.add_argument("--mlps-num", type=int, help="numerical MLPs per layer")
    kinds = " or ".join(ATTENTION_KINDS)
    parser.add_argument("--attention", help=f"relaxed attention while training, {kinds} (default: the task's)")


def train_config(args: argparse.Namespace, task: str, **overrides) -> TrainConfig:
    """A TrainConfig from parsed flags."""
    values = {name: getattr(args, name, None) for name in (*ARCH_FIELDS, "attention")}
    values.update(
        task=task,
        model=args.model,
        seed=getattr(args, "seed", 0),
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        tau_start=args.tau_start,
        tau_end=args.tau_end,
        n_examples=args.n_examples,
        vocab_size=args.vocab_size,
        train_lengths=args.train_lengths,
        test_lengths=args.test_lengths,
        max_len=args.max_len,
        reverse_sum=args.reverse_sum,
        n_embed_vars=args.n_embed_vars,
    )
    values.update(overrides)
    return TrainConfig(**values)


def cmd_tasks(args: argparse.Namespace) -> int:
    from .tasks import TASKS

    header = "model (L / heads cat+num / mlps cat+num, attention)"
    print(f"{'task':<15} {'vocab':>5} {'lengths':>8} {'causal':>6}  {header:<52} description")
    for name, spec in TASKS.items():
        m = spec.model
        arch = f"{m.layers}L / {m.heads_cat}+{m.heads_num} / {m.mlps_cat}+{m.mlps_num}, {m.attention}"
        span = f"{spec.min_len}-{spec.max_len}"
        print(f"{name:<15} {spec.vocab_size:>5} {span:>8} {str(spec.causal):>6}  {arch:<52} {spec.description}")
    return 0


def print_results(results: dict, out: Path) -> None:
    parts = [f"{split} {results[split]['accuracy']:.4f}" for split in ("train", "val", "test")]
    exact = f"test exact-match {results['test']['exact_match']:.4f}"
    seconds = results.get("seconds_per_epoch")
    timing = f", {seconds:.3f} s/epoch" if seconds is not None else ""
    kept = ""
    if "selected_epoch" in results:
        kept = f"; kept epoch {results['selected_epoch']} of {results['epochs']} (best validation)"
    print(f"{out}: accuracy " + ", ".join(parts) + f"; {exact}{timing}{kept}")
    for note in results.get("notes", []):
        print(f"note: {note}")


def cmd_train(args: argparse.Namespace) -> int:
    from .train import train

    out = Path(args.out or f"runs/{args.task}-seed{args.seed}")
    results = train(train_config(args, args.task), out, resume=args.resume, quiet=args.quiet)
    print_results(results, out)
    if args.program:
        return decompile_and_report(out, None)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .train import evaluate, load_run

    run = load_run(Path(args.run_dir))
    data = run.dataset
    results = {name: evaluate(run.model, *data.tensors[name]) for name in ("train", "val", "test")}
    print_results(results, Path(args.run_dir))
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def decompile_and_report(run_dir: Path, out: Path | None) -> int:
    from .program.verify import decompile_run

    report = decompile_run(run_dir, out)
    acc = report["program_accuracy"]
    print(
        f"{report['program_path']}: {report['lines']} lines, {report['inputs']} inputs verified, "
        f"{report['disagreements']} disagreements; program accuracy val {acc['val']:.4f}, test {acc['test']:.4f}"
    )
    return 0 if report["disagreements"] == 0 else 1


def cmd_decompile(args: argparse.Namespace) -> int:
    return decompile_and_report(Path(args.run_dir), Path(args.out) if args.out else None)


def cmd_predict(args: argparse.Namespace) -> int:
    from .program.verify import predict_run

    print(" ".join(predict_run(Path(args.run_dir), args.tokens)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tprog", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("tasks", help="list the tasks and their defaults").set_defaults(func=cmd_tasks)

    p = sub.add_parser("train", help="train one run and write its run directory")
    p.add_argument("task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run directory (default: runs/TASK-seedS)")
    p.add_argument("--resume", action="store_true", help="continue a killed run from its last epoch")
    p.add_argument("--program", action="store_true", help="decompile and verify the program at the end")
    add_train_arguments(p)
    add_arch_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="re-evaluate a saved run")
    p.add_argument("run_dir")
    p.add_argument("--json", action="store_true", help="also print the full results as JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("decompile", help="write and verify the program of a run")
    p.add_argument("run_dir")
    p.add_argument("--out", help="program file (default: RUN_DIR/program.py)")
    p.set_defaults(func=cmd_decompile)

    p = sub.add_parser("predict", help="run a run's program on tokens")
    p.add_argument("run_dir")
    p.add_argument("tokens", nargs="+")
    p.set_defaults(func=cmd_predict)

    from .experiments.length import add_lengthgen_parser
    from .experiments.sweep import add_sweep_parser

    add_sweep_parser(sub)
    add_lengthgen_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `tprog`: user errors end with one line and exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as err:
        if os.environ.get("TPROG_DEBUG"):
            raise
        print(f"tprog: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("tprog: interrupted; resume with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
