"""Fixtures shared by the test modules: briefly trained runs, trained once per session."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from transformer_programs.config import TrainConfig
from transformer_programs.train import train


def load_benchmark(name: str):
    """benchmarks/NAME.py, loaded as a module (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """trained(**settings): the run directory of train(TrainConfig(**settings)), trained once."""
    runs: dict[str, Path] = {}

    def get(**settings) -> Path:
        key = json.dumps(settings, sort_keys=True)
        if key not in runs:
            runs[key] = tmp_path_factory.mktemp("trained") / settings["task"]
            train(TrainConfig(**settings), runs[key], quiet=True)
        return runs[key]

    return get


@pytest.fixture
def copy_run(tmp_path):
    """copy_run(run_dir): a copy of a run's files in this test's directory, to change freely."""

    def copy(run_dir: Path) -> Path:
        target = tmp_path / "run"
        target.mkdir()
        for path in run_dir.iterdir():
            if path.is_file() and path.name != ".lock":
                (target / path.name).write_bytes(path.read_bytes())
        return target

    return copy


@pytest.fixture
def proof_threads(monkeypatch) -> list[int]:
    """The torch threads each proof of this test ran on, in order (decompile.prove, recorded)."""
    import torch
    from transformer_programs.program import decompile

    seen: list[int] = []
    prove = decompile.prove

    def recording_prove(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return prove(*args, **kwargs)

    monkeypatch.setattr(decompile, "prove", recording_prove)
    return seen


def one_line_error(capsys) -> str:
    """What a command printed to stderr, asserted to be one `tprog: error:` line and no traceback."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("tprog: error: ") and "\n" not in err and "Traceback" not in err, err
    return err
