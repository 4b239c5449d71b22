"""How short would a program be if its classifier were refitted past decompile's cap?

`tprog decompile` refits a classifier's integer points (program/fit_points.py) only where its
reads take at most MAX_FIT_STATES joint values, because each fit past that takes minutes. This
runs one such fit with no cap on a run whose inputs can be listed: every joint value the reads
take on every input, the points that keep each one's label, and the lines of the program with
them, against the run's program.py. Nothing is written.

    python benchmarks/refit_uncapped.py RUN [--lp-seconds 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from transformer_programs.program import fit_points
from transformer_programs.program.classifier_forms import _joint_states, _state_trace, point_rows
from transformer_programs.program.codegen import generate
from transformer_programs.program.decompile import MAX_EXHAUSTIVE, run_program
from transformer_programs.program.domains import value_domains
from transformer_programs.program.interpret import classify
from transformer_programs.program.ir import Classifier, Program, classifier_reads
from transformer_programs.program.simplify import encode_space, fold_constants, merge_duplicates, remove_dead, with_values
from transformer_programs.runio import RunError
from transformer_programs.runs import load_run, model_digest


def before_points(run_dir: Path) -> tuple[Program, np.ndarray]:
    """The run's program simplified up to its classifier's forms, and every input of its space."""
    try:
        run = load_run(run_dir)
    except RunError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    space = run.input_space()
    if space is None or space.size() > MAX_EXHAUSTIVE:
        print(f"error: {run_dir}'s inputs are too many to list; this needs a run whose inputs verification "
              f"lists (at most {MAX_EXHAUSTIVE:,})", file=sys.stderr)
        sys.exit(2)
    full = run_program(run)
    inputs = encode_space(full, space)
    program = with_values(replace(full, input_space=space), inputs)
    return remove_dead(merge_duplicates(fold_constants(program))), inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--lp-seconds", type=float, default=300.0, help="time limit of one linear program")
    args = parser.parse_args()
    program, inputs = before_points(args.run)
    states = _joint_states(program, inputs, [])
    trace = _state_trace(program, states)
    reads = [name for name in states.names if name in classifier_reads(program)]
    print(f"{args.run}: the classifier's {len(reads)} reads take {len(states.labels):,} joint values")
    fit_points.MAX_FIT_STATES, fit_points.LP_SECONDS = len(states.labels), args.lp_seconds
    rows = point_rows(program, value_domains(program))

    def same(points: Classifier) -> bool:
        return bool((classify(replace(program, classifier=points), trace)[:, 0] == states.labels).all())

    fitter = fit_points.PointFitter(states.names, states.values, states.labels, len(program.label_vocab), rows, same)
    start = time.perf_counter()
    points = fitter.points(reads, {name for name in reads if name in program.classifier.numerical})
    seconds = time.perf_counter() - start
    if points is None:
        print(f"no points keep every label ({seconds:.0f} s)")
        return
    weights = [abs(w) for row in (points.bias, *points.numerical.values()) for w in row]
    weights += [abs(w) for table in points.categorical.values() for row in table for w in row]
    lines = generate(remove_dead(replace(program, classifier=points)), model_digest(args.run)).count("\n")
    print(f"refitted in {seconds:.0f} s ({int(fitter.active.sum()):,} joint values in the last linear program): "
          f"every label kept, largest point {int(max(weights)):,}")
    print(f"program lines with these points (no other classifier form tried): {lines}; the run's program.py: "
          f"{(args.run / 'program.py').read_text().count(chr(10))}")


if __name__ == "__main__":
    main()
