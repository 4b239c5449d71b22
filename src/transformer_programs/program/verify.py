"""Three semantics, one truth: check model, interpreter and generated program agree on every input."""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

import numpy as np
import torch

from ..model.program_model import TransformerProgram
from ..progress import Progress
from ..vocab import BOS, EOS, PAD
from .interpret import run_batch
from .ir import Program

BATCH = 256  # sequences per model / interpreter call
PER_PROCESS = 5000  # fewest inputs worth a process of their own when running the generated program
CHUNK = 2000  # inputs the generated program runs on between two progress updates
_module_ids = itertools.count()


@dataclass
class Report:
    """Outcome of `verify`: counts, and the smallest input showing a disagreement if any."""

    inputs: int
    positions: int
    disagreements: int  # inputs where any two of the three semantics differ at some position
    model_vs_interpreter: int  # inputs where those two differ
    model_vs_program: int  # inputs where those two differ (or the program raised)
    first_disagreement: dict | None  # the minimal example, see `verify`
    predictions: list[list[int]]  # the generated program's label ids per input ([] where it raised)

    @property
    def ok(self) -> bool:
        """Whether the three semantics agreed on every input."""
        return self.disagreements == 0

    def summary(self) -> dict:
        """Everything but the predictions, JSON-ready (not copying them: they can be millions)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "predictions"}


def load_program(path: Path) -> ModuleType:
    """Import a generated program from its file (a fresh module object each call)."""
    spec = importlib.util.spec_from_file_location(f"_tprog_program_{next(_module_ids)}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_inputs(
    program: Program, n: int, min_len: int = 1, max_len: int | None = None, seed: int = 0
) -> list[list[int]]:
    """`n` id sequences: BOS then uniformly drawn ordinary tokens, lengths uniform in min_len..max_len."""
    max_len = program.max_len if max_len is None else max_len
    if not 1 <= min_len <= max_len <= program.max_len:
        raise ValueError(f"need 1 <= min_len <= max_len <= {program.max_len}, got {min_len}..{max_len}")
    if BOS not in program.input_vocab:
        raise ValueError(f"the input vocabulary has no {BOS!r}")
    ordinary = [i for i, token in enumerate(program.input_vocab) if token not in (PAD, BOS, EOS)]
    if not ordinary and max_len > 1:
        raise ValueError("the input vocabulary has no ordinary tokens to draw longer sequences from")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n)
    bos = program.input_vocab.index(BOS)
    return [[bos, *rng.choice(ordinary, size=length - 1).tolist()] if length > 1 else [bos] for length in lengths]


def as_sequences(inputs: Sequence[Sequence[int]] | np.ndarray | torch.Tensor) -> list[list[int]]:
    """Id sequences without padding; in an (N, T) array, pads (0) may only trail."""
    sequences = []
    for row in inputs:
        row = [int(i) for i in row]
        length = max((n + 1 for n, i in enumerate(row) if i != 0), default=0)
        if 0 in row[:length]:
            raise ValueError("padding (id 0) inside a sequence; pads may only trail")
        if length == 0:
            raise ValueError("an empty sequence; every sequence holds at least BOS")
        sequences.append(row[:length])
    return sequences


def padded(sequences: list[list[int]]) -> np.ndarray:
    """Right-padded (N, T) id array."""
    out = np.zeros((len(sequences), max(len(s) for s in sequences)), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        out[row, : len(sequence)] = sequence
    return out


def _batched(sequences: list[list[int]], predict: Callable[[np.ndarray], np.ndarray],
             progress: Progress) -> list[list[int]]:
    """Predictions per sequence, computed in batches of similar length."""
    order = sorted(range(len(sequences)), key=lambda n: len(sequences[n]))
    out: list[list[int]] = [[] for _ in sequences]
    for start in range(0, len(order), BATCH):
        chunk = order[start : start + BATCH]
        predictions = predict(padded([sequences[n] for n in chunk]))  # (b, T)
        for row, n in enumerate(chunk):
            out[n] = [int(p) for p in predictions[row, : len(sequences[n])]]
        progress.update(len(chunk))
    return out


class _GeneratedProgram:
    """The generated program, run on id sequences: label ids, or the text of the exception it raised."""

    def __init__(self, program: Program, module: ModuleType):
        self.input_vocab, self.module = program.input_vocab, module
        self.label_ids = {label: i for i, label in enumerate(program.label_vocab)}

    def __call__(self, sequence: list[int]) -> list[int] | str:
        try:
            labels = self.module.run([self.input_vocab[i] for i in sequence])
            return [self.label_ids[label] for label in labels]
        except Exception as error:  # a disagreement to report, not a crash of the verifier
            return f"{type(error).__name__}: {error}"


_forked: tuple[_GeneratedProgram, list[list[int]]] | None = None  # what forked workers read: see _run_program


def _run_program_chunk(bounds: tuple[int, int]) -> list[list[int] | str]:
    """In a forked worker: the generated program on sequences[start:stop]."""
    run, sequences = _forked
    return [run(sequence) for sequence in sequences[bounds[0] : bounds[1]]]


def _run_program(run: _GeneratedProgram, sequences: list[list[int]], progress: Progress) -> list[list[int] | str]:
    """The generated program on every sequence, in chunks over as many forked processes (which
    inherit the imported program) as this process may use cores (processes wait without spinning,
    so they share a busy machine gracefully); in this process where there are few inputs, or no fork."""
    global _forked
    workers = min(len(os.sched_getaffinity(0)), max(1, len(sequences) // PER_PROCESS))
    chunks = [(start, min(start + CHUNK, len(sequences))) for start in range(0, len(sequences), CHUNK)]
    out: list[list[int] | str] = []
    _forked = (run, sequences)
    try:
        with contextlib.ExitStack() as stack:
            mapped = map
            if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
                pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
                mapped = stack.enter_context(pool).map  # results in order, as they finish
            for part in mapped(_run_program_chunk, chunks):
                out += part
                progress.update(len(part))
        return out
    finally:
        _forked = None


class _Semantics:
    """The three semantics of one program, run on id sequences."""

    def __init__(self, model: TransformerProgram, program: Program, module: ModuleType):
        self.model, self.program = model, program
        self.by_program = _GeneratedProgram(program, module)

    def by_model(self, ids: np.ndarray) -> np.ndarray:
        return self.model.discrete(torch.from_numpy(ids))[0].numpy()  # (B, T)

    def by_interpreter(self, ids: np.ndarray) -> np.ndarray:
        return run_batch(self.program, ids)[0]  # (B, T)

    def disagree(self, sequence: list[int]) -> bool:
        """Whether the three differ anywhere on one sequence the program takes."""
        space = self.program.input_space
        if space is not None and not space.contains([self.program.input_vocab[i] for i in sequence]):
            return False
        ids = np.array([sequence])
        reference = self.by_model(ids)[0].tolist()
        return not reference == self.by_interpreter(ids)[0].tolist() == self.by_program(sequence)

    def explain(self, sequence: list[int]) -> dict:
        """The three predictions on one input and the first variable where model and interpreter differ."""
        ids = np.array([sequence])
        model_labels, model_trace = self.model.discrete(torch.from_numpy(ids))
        interpreter_labels, interpreter_trace = run_batch(self.program, ids)
        first = None
        for variable in self.program.variables:
            expected, got = model_trace[variable.name][0].tolist(), interpreter_trace[variable.name][0].tolist()
            if expected != got:
                first = {"variable": variable.name, "model": expected, "interpreter": got}
                break
        program_labels = self.by_program(sequence)
        decode = self.program.label_vocab.__getitem__
        return {
            "tokens": [self.program.input_vocab[i] for i in sequence],
            "model": [decode(i) for i in model_labels[0].tolist()],
            "interpreter": [decode(i) for i in interpreter_labels[0].tolist()],
            "program": [decode(i) for i in program_labels] if isinstance(program_labels, list) else program_labels,
            "first_differing_variable": first,  # None: model and interpreter traces agree
        }


def _shrink(sequence: list[int], fails: Callable[[list[int]], bool]) -> list[int]:
    """A shorter input that still fails: the shortest failing prefix, then single positions removed."""
    for length in range(1, len(sequence)):
        if fails(sequence[:length]):
            sequence = sequence[:length]
            break
    shrunk = True
    while shrunk:
        shrunk = False
        for position in range(1, len(sequence)):
            candidate = sequence[:position] + sequence[position + 1 :]
            if fails(candidate):
                sequence, shrunk = candidate, True
                break
    return sequence


def verify(
    model: TransformerProgram,
    program: Program,
    code_path: Path,
    inputs: Sequence[Sequence[int]] | np.ndarray | torch.Tensor,
    quiet: bool = True,
    name: str | None = None,
) -> Report:
    """Compare discretized model, interpreter and generated program (imported from `code_path`),
    showing progress (under `name`, default the file's) unless `quiet`.

    `inputs` are id sequences, or an (N, T) array right-padded with 0. On disagreement the
    report holds the smallest input that shows it (fewest tokens, then shrunk) with the three
    predictions and the first variable, in variable order, where the traces differ.
    """
    sequences = as_sequences(inputs)
    semantics = _Semantics(model, program, load_program(Path(code_path)))
    with Progress(f"checking {name or Path(code_path).name}", 3 * len(sequences), quiet) as progress:
        by_model = _batched(sequences, semantics.by_model, progress)
        by_interpreter = _batched(sequences, semantics.by_interpreter, progress)
        by_program = _run_program(semantics.by_program, sequences, progress)
    failing = [n for n in range(len(sequences)) if not by_model[n] == by_interpreter[n] == by_program[n]]
    first = None
    if failing:
        smallest = min(failing, key=lambda n: len(sequences[n]))
        first = semantics.explain(_shrink(sequences[smallest], semantics.disagree))
    return Report(
        inputs=len(sequences),
        positions=sum(len(s) for s in sequences),
        disagreements=len(failing),
        model_vs_interpreter=sum(a != b for a, b in zip(by_model, by_interpreter)),
        model_vs_program=sum(a != b for a, b in zip(by_model, by_program)),
        first_disagreement=first,
        predictions=[p if isinstance(p, list) else [] for p in by_program],
    )
