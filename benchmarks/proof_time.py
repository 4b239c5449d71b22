"""Time to prove a run's programs by their tables, beside the whole-input run it replaces.

For each run directory (trained Transformer Programs), on its simplified and full programs:
  proof      `prove` (tables, and on a listed space the vectorized model and IR run), in seconds;
  run-all    `verify` on every verification input (all listed inputs, else validation, test and
             random ones): the generated program run on each, as decompile did before proofs;
  decompile  the whole `tprog decompile` now (simplify, proofs, 5,000-input second check).
Each figure is the median of --repeats runs. Run it on an otherwise idle machine (pause
background jobs). Usage: python benchmarks/proof_time.py RUN_DIR ... [--repeats 3] [--skip-run-all]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import median_seconds

from transformer_programs.program.codegen import generate
from transformer_programs.program.decompile import run_program, simplified, verification_inputs
from transformer_programs.program.prove import prove
from transformer_programs.program.verify import load_program, verify
from transformer_programs.runs import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-run-all", action="store_true", help="skip the whole-input run (minutes per run)")
    args = parser.parse_args()
    print("| run | program | inputs | proof scope | proof s | run-all s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for run_dir in args.runs:
        run = load_run(run_dir)
        full = run_program(run)
        inputs, how = verification_inputs(run, full)
        with tempfile.TemporaryDirectory() as tmp:
            for name, program in (("program", simplified(run, full, inputs, how)), ("program_full", full)):
                source = generate(program)
                path = Path(tmp) / f"{name}.py"
                path.write_text(source, encoding="utf-8")
                module = load_program(path)
                listed = inputs if how["exhaustive"] else None
                result = prove(run.model, full, program, source, module, listed)
                proof = median_seconds(lambda: prove(run.model, full, program, source, module, listed), args.repeats)
                scope = result["scope"] if not result["unproved"] else f"unproved: {result['unproved'][0]}"
                if args.skip_run_all:
                    print(f"| {run_dir.name} | {name} | {len(inputs):,} | {scope} | {proof:.2f} | | |")
                    continue
                run_all = median_seconds(lambda: verify(run.model, program, path, inputs), 1)
                print(f"| {run_dir.name} | {name} | {len(inputs):,} | {scope} | {proof:.2f} | {run_all:.1f} | "
                      f"{run_all / proof:.0f}x |")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "program.py"
            command = [sys.executable, "-m", "transformer_programs.cli", "decompile", str(run_dir), "--out", str(out),
                       "--quiet"]
            seconds = median_seconds(lambda: subprocess.run(command, env=env, check=True, capture_output=True),
                                     args.repeats)
        print(f"| {run_dir.name} | whole `tprog decompile` | | | {seconds:.1f} | | |")


if __name__ == "__main__":
    main()
