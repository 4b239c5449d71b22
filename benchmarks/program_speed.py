"""Program speed: sequences per second over a task's test set, IR interpreter vs generated program.

Usage: python benchmarks/program_speed.py [RUN_DIR] [--repeats 3]. Without RUN_DIR a `sort`
model is trained briefly (speed does not depend on accuracy). Prints one table.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from transformer_programs.program.codegen import generate
from transformer_programs.program.extract import extract
from transformer_programs.program.interpret import run_batch
from transformer_programs.program.verify import load_program
from transformer_programs.config import TrainConfig
from transformer_programs.runs import load_run
from transformer_programs.train import train

from timing import median_seconds  # benchmarks/timing.py, beside this script


def rate(function, n: int, repeats: int) -> float:
    """Median sequences per second of `function()` processing `n` sequences."""
    return n / median_seconds(function, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", help="a trained run (default: train sort for 3 epochs)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.run_dir) if args.run_dir else Path(tmp) / "run"
        if not args.run_dir:
            train(TrainConfig(task="sort", epochs=3), run_dir, quiet=True)
        run = load_run(run_dir)
        data = run.dataset
        program = extract(run.model, run.input_vocab, run.label_vocab)
        path = Path(tmp) / "program.py"
        path.write_text(generate(program))
        module = load_program(path)
        ids = data.tensors["test"][0].numpy()
        sequences = data.splits.test.inputs
        interpreter = rate(lambda: run_batch(program, ids), len(ids), args.repeats)
        generated = rate(lambda: [module.run(seq) for seq in sequences], len(sequences), args.repeats)
        model = rate(lambda: run.model.predict(data.tensors["test"][0]), len(ids), args.repeats)
    task = run.train_config.task
    print("| task | test sequences | discretized model (torch) seq/s | IR interpreter (numpy) seq/s | generated program seq/s |")
    print("|---|---|---|---|---|")
    print(f"| {task} | {len(ids)} | {model:,.0f} | {interpreter:,.0f} | {generated:,.0f} |")


if __name__ == "__main__":
    main()
