"""The Python API, for notebooks: load a run, get its programs, run, trace and ablate them, and
see its circuit, its mistakes and a report. The `tprog` commands are thin layers over it.

    import transformer_programs as tp
    run = tp.load("runs/sort")
    run.predict(["<s>", "3", "1", "2", "</s>"])
    print(run.trace(["<s>", "3", "1", "2", "</s>"]).table())
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from . import runio
from .analysis.circuit import CIRCUIT_MARK, Circuit, ablated, accuracy, circuit, most_common_values
from .analysis.errors import ErrorGroup, error_groups
from .analysis.features import FEATURES_MARK, features_markdown
from .analysis.report import REPORT_MARK, HeatmapInput, Page, render
from .analysis.run_files import proof_summary, pruning_summary, read_metrics, read_results
from .analysis.trace import Trace, head_patterns, trace
from .model.program_model import TransformerProgram
from .program import generate
from .program.decompile import check_program_current, run_program, simplified_program
from .program.interpret import encode_tokens, run_batch, run_tokens
from .program.ir import Program
from .runs import LoadedRun, load_run


SPLITS = ("train", "val", "test")


def as_token_list(tokens: list[str] | str) -> list[str]:
    """Tokens given as a list, or as one string of them separated by white space."""
    return tokens.split() if isinstance(tokens, str) else list(tokens)


class Run:
    """A trained Transformer Program run and the tools to read and debug its program."""

    def __init__(self, path: str | Path):
        self.loaded: LoadedRun = load_run(Path(path))
        if not isinstance(self.loaded.model, TransformerProgram):
            raise ValueError(f"{path} holds a {type(self.loaded.model).__name__}; only Transformer Programs have programs")
        check_program_current(Path(path))  # weights or programs changed since verification: refused, as by tprog
        self.path = Path(path)

    @functools.cached_property
    def program(self) -> Program:
        """The full program: every part of the model, exact on every input."""
        return run_program(self.loaded)

    @functools.cached_property
    def simplified(self) -> Program:
        """The simplified program (what program.py holds)."""
        return simplified_program(self.loaded, self.program)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A data split ("train", "val" or "test") as right-padded id arrays (inputs, labels)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        inputs, labels = self.loaded.dataset.tensors[name]
        return inputs.numpy(), labels.numpy()

    def predict(self, tokens: list[str] | str) -> list[str]:
        """The label the program gives each position of `tokens` (a list, or one string of them
        separated by spaces)."""
        return run_tokens(self.program, as_token_list(tokens))

    def trace(self, tokens: list[str] | str, simplified: bool = False) -> Trace:
        """Every variable's value at every position of `tokens`, and each head's reads."""
        return trace(self.simplified if simplified else self.program, as_token_list(tokens))

    def accuracy(self, split: str = "val", program: Program | None = None) -> float:
        """Token accuracy of the program (or `program`) on a split."""
        return accuracy(program or self.program, *self.split(split))

    def ablate(self, part: str, value: int | None = None, split: str = "val") -> float:
        """Accuracy on a split with one part replaced by `value` (default: its most common value)."""
        inputs, _ = self.split(split)
        program = self.program
        parts = [e.name for e in program.embeddings] + [c.name for layer in program.layers for c in layer.components()]
        if part not in parts:
            raise ValueError(f"unknown part {part!r}; the program's parts are {', '.join(parts)}")
        variable = program.variable(part)
        highest = variable.bound if variable.numerical else program.d - 1
        if value is None:
            value = most_common_values(program, inputs)[part]
        elif not 0 <= value <= highest:
            raise ValueError(f"value {value} is outside {part}'s values 0..{highest}")
        return self.accuracy(split, ablated(program, part, value))

    def circuit(self, split: str = "val", simplified: bool = False) -> Circuit:
        """The dependency graph, each part scored by the accuracy lost when it is ablated."""
        return circuit(self.simplified if simplified else self.program, *self.split(split))

    def write_circuit(self, graph: Circuit, out: str | Path | None = None) -> Path:
        """Write a circuit as an SVG image (default RUN/circuit.svg), never over a file it did not write."""
        out = Path(out) if out is not None else self.path / "circuit.svg"
        runio.check_output(out, CIRCUIT_MARK)
        runio.atomic_write_text(out, CIRCUIT_MARK + graph.svg())
        return out

    def errors(self, split: str = "test", simplified: bool = False) -> list[ErrorGroup]:
        """The program's mistakes on a split, grouped by the branch that chose the wrong value."""
        return error_groups(self.simplified if simplified else self.program, *self.split(split))

    def features_page(self) -> str:
        """The feature-function view (Markdown) of a run with learned embeddings."""
        training = [sequence[1:-1] for sequence in self.loaded.splits.train.inputs]  # words, not <s> and </s>
        return features_markdown(self.program, training, f"a {self.loaded.train_config.task} run")  # no machine's path

    def features(self, out: str | Path | None = None) -> Path:
        """Write the feature-function view (features.md) of a run with learned embeddings."""
        out = Path(out) if out is not None else self.path / "features.md"
        runio.check_output(out, FEATURES_MARK)
        runio.atomic_write_text(out, self.features_page())
        return out

    def report(self, out: str | Path | None = None, examples: int = 3, split: str = "test") -> Path:
        """Write one self-contained HTML page about the run (default RUN/report.html): its simplified
        program, with that program's proof, circuit and error groups on `split`."""
        out = Path(out) if out is not None else self.path / "report.html"
        runio.check_output(out, REPORT_MARK)
        results = read_results(self.path / "results.json")
        metrics = read_metrics(self.path / "metrics.csv")
        proof = proof_summary(self.path / "verification.json")
        program_file = self.path / "program.py"
        if program_file.is_file():  # current: load() refuses a run whose programs are not
            source, note = program_file.read_text(encoding="utf-8"), "program.py, the simplified program, as verified."
        else:
            source, note = generate(self.simplified), "The simplified program (generated for this page: no program.py)."
        inputs, _ = self.split("test")
        shown = []
        for row in inputs[:examples]:
            tokens = [self.program.input_vocab[i] for i in row if i != 0]
            ids = encode_tokens(self.simplified, tokens)
            patterns = head_patterns(self.simplified, run_batch(self.simplified, ids)[1], ids != 0)
            shown.append(HeatmapInput(tokens, {head: reads[0] for head, reads in patterns.items()}))
        features = self.features_page() if self.program.embeddings else None
        page = Page(f"Transformer Program: {self.path}", self.loaded.config, results, metrics, source, note, proof,
                    pruning_summary(results), self.circuit(simplified=True), shown,
                    self.errors(split, simplified=True), split, features)
        runio.atomic_write_text(out, render(page))
        return out


def load(path: str | Path) -> Run:
    """The run in directory `path` (written by `tprog train` or `tprog prune`)."""
    return Run(path)
