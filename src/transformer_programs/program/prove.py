"""Proof that a program is its model: on every input, or on every input of a listed space.

Three semantics apply one set of rules (docs/semantics.md) to tables: the model's discrete path,
the IR interpreter and the generated program. That they apply the same rules is checked once for
all programs, on the shared case table and by a fuzz (tests/test_program.py, tests/test_prove.py).
So a program is proved by its tables:

- a full program: its IR's tables are the ones the model's discrete path reads (`model_gaps`),
  and its generated file computes its IR part by part (`generated_gaps`), so all three agree on
  every sequence of the model's tokens up to its length;
- a simplified program whose input space is not listed: each part is its full program's, part by
  part (`simplified_gaps`), and its generated file computes its IR part by part;
- a simplified program whose input space is listed: the model and the IR run on every input of
  the space, vectorized (seconds, not the minutes the generated Python takes), which also
  bounds every variable's values, and the generated file computes its IR part by part.

What is not proved is named, part by part, and then checked by running all three (`verify`).
"""

from __future__ import annotations

import time
from types import ModuleType

import numpy as np
import torch

from ..model.program_model import TransformerProgram
from ..vocab import Vocab
from .extract import extract
from .generated_proof import generated_gaps
from .interpret import run_batch
from .ir import Program
from .simplified_proof import simplified_gaps

RUN_BATCH = 4096  # inputs per model / interpreter call on a listed space

EVERY_INPUT = "every input"  # every input the program takes, listed or not
EVERY_LISTED_INPUT = "every listed input"
SAMPLED = "sampled"


def model_gaps(model: TransformerProgram, program: Program) -> list[str]:
    """The parts of the full IR `program` whose tables are not those of `model`'s discrete path."""
    try:
        tables = extract(model, Vocab(tuple(program.input_vocab)), Vocab(tuple(program.label_vocab)),
                         program.unknown, program.replace_numbers)
    except ValueError as error:
        return [f"model: {error}"]
    gaps = []
    if (tables.max_len, tables.d) != (program.max_len, program.d):
        gaps.append("program: its length or value space is not the model's")
    if tables.variables != program.variables:
        gaps.append("variables: not the model's (names, kinds, bounds or pruning)")
    if tables.embeddings != program.embeddings:
        gaps.append("embeddings: a token's value is not the model's")
    if [len(layer.components()) for layer in program.layers] != [len(layer.components()) for layer in tables.layers]:
        gaps.append("layers: not the model's parts")
    for mine, theirs in zip(program.layers, tables.layers):
        for part, expected in zip(mine.components(), theirs.components()):
            if part != expected:
                gaps.append(f"{part.name}: not the model's (its inputs or its table)")
    if program.classifier != tables.classifier:
        gaps.append("classifier: its weights are not the model's")
    return gaps


def listed_gaps(model: TransformerProgram, program: Program, inputs: np.ndarray) -> list[str]:
    """Where the model and the IR differ on the listed `inputs` (N, T), or the IR's variables take
    a value outside the values it declares (which the generated program's tables cover)."""
    declared = {v.name: set(v.values) for v in program.variables if v.values is not None}
    wrong = 0
    first = None
    for start in range(0, len(inputs), RUN_BATCH):
        chunk = inputs[start : start + RUN_BATCH]  # (b, T)
        valid = chunk != 0  # (b, T)
        by_model = model.discrete(torch.from_numpy(chunk))[0].numpy()  # (b, T)
        by_program, trace = run_batch(program, chunk)  # (b, T), {name: (b, T)}
        differs = ((by_model != by_program) & valid).any(1)  # (b,)
        wrong += int(differs.sum())
        if first is None and differs.any():
            first = [program.input_vocab[i] for i in chunk[int(np.flatnonzero(differs)[0])] if i != 0]
        for name, values in declared.items():
            outside = set(np.unique(trace[name][valid]).tolist()) - values
            if outside:
                return [f"{name}: takes {sorted(outside)[:5]}, outside the values the program declares"]
    return [f"predictions: the model and the IR differ on {wrong} listed inputs, first {first}"] if wrong else []


def prove(model: TransformerProgram, full: Program, program: Program, source: str, module: ModuleType,
          listed: np.ndarray | None) -> dict:
    """The proof that `program` (generated as `source`, imported as `module`) is `model`, where
    `full` is the model's full program and `listed` every input of the program's input space
    (None where it is not listed): {"scope", "method", "seconds", "unproved": [part: reason]}.

    Scope "every input" or "every listed input" when nothing is unproved; otherwise the caller
    checks by running, and says so."""
    start = time.perf_counter()
    if program is full:
        gaps = model_gaps(model, program)
        scope, method = EVERY_INPUT, "tables: the IR's are the model's, the generated program's are the IR's"
    elif listed is not None:
        gaps = listed_gaps(model, program, listed)
        scope = EVERY_LISTED_INPUT
        method = (f"the model and the IR run on all {len(listed)} listed inputs; "
                  "the generated program's tables are the IR's")
    else:
        gaps = simplified_gaps(full, program)
        scope, method = EVERY_INPUT, "by parts: each is the full program's, the generated program's tables are the IR's"
    gaps += generated_gaps(program, source, module)
    return {"scope": scope, "method": method, "seconds": round(time.perf_counter() - start, 3), "unproved": gaps}
