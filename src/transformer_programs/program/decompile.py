"""A run -> its programs on disk: the simplified program.py and program_full.py, each verified.

Both are written only once verified against the model: proved by their tables (`prove`: the
full program on every input, the simplified one on every input of its task's space where that
can be listed) and checked by running all three semantics on a sample beside the proof; what the
proof leaves is checked by running on every listed input (`"exhaustive": true`), else on the
validation and test inputs plus random ones. verification.json and each program name the model
(a hash of its config and weights) they were verified against, so a program whose model has
changed is refused, not served.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from .. import runio
from ..model.program_model import TransformerProgram
from ..runs import LoadedRun, load_run, model_digest
from ..threads import thread_count, torch_threads
from .codegen import generate
from .extract import extract
from .interpret import run_tokens
from .ir import Program
from .line_count import code_lines
from .prove import EVERY_LISTED_INPUT, SAMPLED, prove
from .simplify import encode_space, predictions, simplify
from .templates import MARK
from .verify import Report, as_sequences, load_program, padded, random_inputs, verify

MAX_EXHAUSTIVE = 400_000  # inputs: up to this many, verification checks every input of the space
SECOND_CHECK = 5_000  # listed inputs that all three semantics run on beside a proof, at most
RUN_FILES = ("config.json", "model.safetensors", "checkpoint.safetensors", "checkpoint.json", "metrics.csv",
             "results.json", "verification.json", "verification-failed.json")
DIGEST_LINE = re.compile(r'^MODEL_SHA256 = "([0-9a-f]{64})"$', re.MULTILINE)


def program_paths(run_dir: Path, out: Path | None) -> dict[str, Path]:
    """Where the simplified and the full program go: RUN/program.py and RUN/program_full.py,
    or OUT and OUT's name with _full; ValueError for a path that is not ours to write."""
    simple = Path(out) if out is not None else Path(run_dir) / "program.py"
    if simple.suffix != ".py":
        raise ValueError(f"--out {simple} must name a .py file; choose another --out")
    paths = {"program": simple, "program_full": simple.with_name(simple.stem + "_full.py")}
    for path in paths.values():
        if path.parent.resolve() == Path(run_dir).resolve() and path.name in RUN_FILES:
            raise ValueError(f"{path} is one of the run's own files; choose another --out")
        if path.is_dir() or (path.exists() and not runio.starts_with(path, MARK)):
            raise ValueError(f"{path} exists and is not a program transformer_programs wrote; choose another --out")
    return paths


def run_program(run: LoadedRun) -> Program:
    """The full program of a run's model, reading words as its task does (word tasks)."""
    return extract(run.model, run.input_vocab, run.label_vocab, *run.word_reading())


def verification_inputs(run: LoadedRun, program: Program, n_random: int = 2000) -> tuple[np.ndarray | list, dict]:
    """The inputs to verify on and how they were chosen: every input of the run's input space
    when it has at most MAX_EXHAUSTIVE, else validation, test and `n_random` random inputs, drawn
    from the input space where the task has one (so of the task's own lengths), else from any
    sequence of its tokens."""
    space = run.input_space()
    fits = space is not None and space.max_len + 1 + space.eos <= program.max_len
    if fits and space.size() <= MAX_EXHAUSTIVE:
        inputs = encode_space(program, space)
        return inputs, {"exhaustive": True, "input_space": space.describe(), "random_inputs": 0}
    data = run.dataset
    held_out = [data.tensors[name][0].numpy() for name in ("val", "test")]
    if fits:
        index = {token: i for i, token in enumerate(program.input_vocab)}
        sampled = [[index[token] for token in tokens] for tokens in space.sample(n_random, seed=0)]
    else:
        sampled = random_inputs(program, n_random, 1, program.max_len, seed=0)
    return [*held_out[0], *held_out[1], *sampled], {
        "exhaustive": False, "input_space": None, "random_inputs": n_random,
        "random_from": space.describe() if fits else "any sequence of the vocabulary"}


def simplified(run: LoadedRun, full: Program, inputs, how: dict, quiet: bool = True) -> Program:
    """The simplified program of a run: defined on its input space where verification lists it
    (then exact on each input of it), else on every input, each pass checked on `inputs`."""
    if how["exhaustive"]:
        return simplify(full, run.input_space(), quiet=quiet)
    return simplify(full, None, padded(as_sequences(inputs)), quiet=quiet)


def simplified_program(run: LoadedRun, full: Program) -> Program:
    """The simplified program of a run whose full program is `full`: what its program.py holds."""
    inputs, how = verification_inputs(run, full)
    return simplified(run, full, inputs, how)


def _program_accuracy(run: LoadedRun, program: Program) -> dict[str, float]:
    """Token accuracy of a program on the validation and test splits, from its IR's predictions
    (which its proof and check make the generated program's)."""
    accuracy = {}
    for name in ("val", "test"):
        x, y = (tensor.numpy() for tensor in run.dataset.tensors[name])
        scored = y != 0  # (N, T)
        correct = (predictions(program, x) == y) & scored  # (N, T)
        accuracy[name] = float(correct.sum() / max(int(scored.sum()), 1))
    return accuracy


def second_check_inputs(inputs, how: dict) -> list[list[int]] | np.ndarray:
    """The inputs all three semantics run on beside a proof: every listed input up to
    SECOND_CHECK of them, else SECOND_CHECK drawn from them; the validation, test and random
    inputs where the space is not listed."""
    if not how["exhaustive"] or len(inputs) <= SECOND_CHECK:
        return inputs
    chosen = np.sort(np.random.default_rng(0).choice(len(inputs), SECOND_CHECK, replace=False))
    return inputs[chosen]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decompile_run(run_dir: Path, out: Path | None = None, n_random: int = 2000, quiet: bool = False,
                  threads: int | None = None) -> dict:
    """Write a run's simplified and full programs, each verified against its model, and
    RUN_DIR/verification.json; return that record. The model runs on `threads` torch threads
    (threads.thread_count: one unless asked).

    A program is moved into place only when its verification finds no disagreement. Otherwise
    nothing is replaced, the record (with the smallest input that shows the disagreement) goes
    to RUN_DIR/verification-failed.json, and its "disagreements" is above 0: callers (the CLI)
    must treat that as failure. Progress (simplifying, then checking) is shown unless `quiet`.
    """
    with torch_threads(thread_count(threads)):
        return _decompile_run(Path(run_dir), out, n_random, quiet)


def _decompile_run(run_dir: Path, out: Path | None, n_random: int, quiet: bool) -> dict:
    """decompile_run's work, on the threads it set."""
    run = load_run(run_dir)
    if not isinstance(run.model, TransformerProgram):
        raise ValueError(f"{run_dir} holds a {type(run.model).__name__}; only Transformer Programs decompile")
    paths = program_paths(run_dir, out)
    digest = model_digest(run_dir)
    full = run_program(run)
    inputs, how = verification_inputs(run, full, n_random)
    programs = {"program": simplified(run, full, inputs, how, quiet), "program_full": full}
    reports: dict[str, dict] = {}
    written: dict[str, Path] = {}
    try:
        for name, program in programs.items():
            code = generate(program, digest)
            temporary = paths[name].with_name(f".{paths[name].stem}.verifying.py")
            runio.atomic_write_text(temporary, code)
            written[name] = temporary
            proof = prove(run.model, full, program, code, load_program(temporary),
                          inputs if how["exhaustive"] else None)
            if proof["unproved"]:  # what the proof leaves is checked on every verification input
                proof["scope"] = EVERY_LISTED_INPUT if how["exhaustive"] else SAMPLED
                proof["method"] = f"model, IR and program run on all {len(inputs)} verification inputs"
            checked = second_check_inputs(inputs, how) if not proof["unproved"] else inputs
            report: Report = verify(run.model, program, temporary, checked, quiet, paths[name].name)
            reports[name] = {
                "path": _relative(paths[name], run_dir),
                "lines": code.count("\n"),
                "code_lines": code_lines(code),
                "sha256": _sha256(temporary),
                "proof": proof,
                **report.summary(),
            }
        record = {
            "model_sha256": digest,
            **how,
            "inputs": len(inputs),
            "disagreements": sum(report["disagreements"] for report in reports.values()),
            "lines": reports["program"]["lines"],
            "lines_full": reports["program_full"]["lines"],
            "code_lines": reports["program"]["code_lines"],
            "code_lines_full": reports["program_full"]["code_lines"],
            "embeddings": len(full.embeddings),
            "programs": reports,
        }
        if record["disagreements"]:
            runio.write_json(run_dir / "verification-failed.json", record)
            return record
        record["program_accuracy"] = _program_accuracy(run, programs["program"])
        for name, temporary in written.items():
            paths[name].parent.mkdir(parents=True, exist_ok=True)
            temporary.replace(paths[name])
        written.clear()
        runio.write_json(run_dir / "verification.json", record)
        (run_dir / "verification-failed.json").unlink(missing_ok=True)
        return record
    finally:
        for temporary in written.values():
            temporary.unlink(missing_ok=True)


def _relative(path: Path, run_dir: Path) -> str:
    """`path` relative to the run directory where it lies inside it."""
    try:
        return str(path.resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return str(path)


def check_program_current(run_dir: Path) -> None:
    """RunError when RUN_DIR's programs or verification.json are not those verified against its
    model: the model has changed since, or a program file has."""
    run_dir = Path(run_dir)
    programs = [path for path in (run_dir / "program.py", run_dir / "program_full.py") if path.is_file()]
    record_path = run_dir / "verification.json"
    if not programs and not record_path.is_file():
        return
    digest = model_digest(run_dir)
    again = f"run `tprog decompile {run_dir}` again"
    if not record_path.is_file():
        raise runio.RunError(f"{programs[0]} has no verification record ({record_path} is missing), so it is "
                             f"not known to be the model; {again}")
    record = runio.read_json(record_path)
    if record.get("model_sha256") != digest:
        raise runio.RunError(f"{record_path} describes another model (it has changed since); {again}")
    recorded = {r.get("path"): r.get("sha256") for r in record.get("programs", {}).values() if isinstance(r, dict)}
    for path in programs:
        match = DIGEST_LINE.search(path.read_text(encoding="utf-8", errors="replace"))
        if match is None or match.group(1) != digest:
            raise runio.RunError(f"{path} was not verified against this run's model (it has changed since); {again}")
        if path.name not in recorded:
            raise runio.RunError(f"{path} is not among the programs {record_path} verified; {again}")
        if recorded[path.name] != _sha256(path):
            raise runio.RunError(f"{path} has been edited since it was verified; {again}")


def simplified_lines(run_dir: Path) -> int:
    """Lines of RUN_DIR's simplified program: its `program.py` where it is the one verified against
    the run's model (what its user reads), else one generated now."""
    run_dir = Path(run_dir)
    path = run_dir / "program.py"
    if path.is_file():
        try:
            check_program_current(run_dir)
            return path.read_text(encoding="utf-8").count("\n")
        except runio.RunError:
            pass
    run = load_run(run_dir)
    return generate(simplified_program(run, run_program(run)), model_digest(run_dir)).count("\n")


def predict_run(run_dir: Path, tokens: list[str]) -> list[str]:
    """Labels for `tokens` from the run's program, run as its IR: no file of the run is executed."""
    check_program_current(run_dir)
    run = load_run(Path(run_dir))
    if not isinstance(run.model, TransformerProgram):
        raise ValueError(f"{run_dir} holds a {type(run.model).__name__}; predict runs Transformer Programs only")
    return run_tokens(run_program(run), list(tokens))
