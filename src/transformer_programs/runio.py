"""Run directories on disk: atomic writes, checkpoints for resume, and loading a finished run."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file


class RunError(ValueError):
    """A run directory that is missing, incomplete or corrupt."""


def _readable_by_umask(path: str) -> None:
    """Give a temporary file the mode an ordinary new file gets (mkstemp makes it 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename: never half-written. An OSError
    says which file could not be written and why (not the temporary file's name)."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        _readable_by_umask(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise OSError(f"cannot write {path} ({err.strerror or type(err).__name__}); "
                          "choose a location you can write to") from err
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def starts_with(path: Path, mark: str) -> bool:
    """Whether the file at `path` starts with the text `mark` (how each kind of file this project
    writes begins, so that it never replaces a file it did not write)."""
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.read(len(mark)) == mark
    except (OSError, UnicodeDecodeError):
        return False


def check_output(path: Path, mark: str, flag: str = "--out") -> None:
    """ValueError unless `path` may be written by a command whose files start with `mark`: it does
    not exist, or it is a file such a command wrote. Any other file (a run's weights, a verified
    program, a user's own file) is left alone."""
    if path.is_dir():
        raise ValueError(f"{path} is a directory; {flag} must name a file")
    if path.exists() and not starts_with(path, mark):
        raise ValueError(f"{path} exists and was not written by this command; choose another {flag}")


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> dict:
    """A JSON object from `path`, or a RunError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise RunError(f"{path} does not hold a JSON object")
    return data


def write_csv(path: Path, rows: list[dict]) -> None:
    """All `rows` (dicts with the same keys) as one CSV file, written atomically."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Tensors as safetensors, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        _readable_by_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file, or a RunError naming the file."""
    if not path.is_file():
        raise RunError(f"{path} is missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise RunError(f"{path} is not a readable safetensors file ({err})") from None


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of a safetensors file, or a RunError naming the file."""
    if not path.is_file():
        raise RunError(f"{path} is missing")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise RunError(f"{path} is not a readable safetensors file ({err})") from None


def check_output_dir(out: Path, marker: str, holds: str, ignored: tuple[str, ...] = ()) -> None:
    """RunError unless the directory `out` may be written by a command whose directories hold the
    file `marker` (what it calls `holds`): it does not exist, it is empty (but for `ignored` names),
    or it holds `marker`. A file, or a directory of anything else, is left alone."""
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} is a file; choose a new or empty --out")
    if out.is_dir() and not (out / marker).exists() and any(p.name not in ignored for p in out.iterdir()):
        raise RunError(f"{out} is not empty and holds no {holds}; choose a new or empty --out")


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold DIRECTORY/.lock for the duration, or a RunError when another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(f"another tprog process is writing into {directory}; wait for it or choose another --out") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """An optimizer's per-parameter state as flat named tensors."""
    tensors = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value)
    return tensors


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Load per-parameter state written by `optimizer_tensors`."""
    state_dict = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    state_dict["state"] = state
    optimizer.load_state_dict(state_dict)
