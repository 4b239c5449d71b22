"""Run directories read back: a finished run's settings, model, vocabularies and data."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from . import runio
from .config import ARCH_FIELDS, TrainConfig, fits, check_fields, task_spec
from .data import Dataset, Splits, build_dataset
from .model import MODEL_KINDS, ProgramConfig, StandardConfig, build_model
from .model.program_model import TransformerProgram
from .model.standard import PROGRAM_ONLY
from .tasks import InputSpace
from .tasks.nlp import UNK, NlpTask
from .vocab import Vocab


def model_config(config: TrainConfig, data: Dataset) -> dict:
    """The model's constructor arguments for this run."""
    spec = task_spec(config)
    base = {"n_tokens": len(data.input_vocab), "n_labels": len(data.label_vocab), "max_len": data.max_len}
    base["causal"] = spec.causal
    for key in ARCH_FIELDS + ("n_embed_vars", "attention", "dropout"):
        base[key] = getattr(config, key)
    if spec.model.pooled:
        base["pooled"] = True
    if config.model == "program" and config.sparsity > 0:
        base["gates"] = True
    if config.model == "program" and config.classifier_step > 0:
        base["classifier_step"] = config.classifier_step
    if config.model == "program" and config.d_values is not None:
        base.update(d_values=config.d_values, tokens_variable=spec.model.tokens_variable)
    return {**base, **config.extra}


@dataclass
class LoadedRun:
    """A finished run read back from disk."""

    path: Path
    config: dict
    train_config: TrainConfig
    model: torch.nn.Module
    input_vocab: Vocab
    label_vocab: Vocab

    @functools.cached_property
    def dataset(self) -> Dataset:
        """The run's data, regenerated from its seed (once)."""
        return build_dataset(self.train_config)

    @property
    def splits(self) -> Splits:
        return self.dataset.splits

    def input_space(self) -> InputSpace | None:
        """Every input of the run's task at its train and test lengths, where they can be listed."""
        config = self.train_config
        low, high = config.train_lengths
        if config.test_lengths:
            low, high = min(low, config.test_lengths[0]), max(high, config.test_lengths[1])
        return task_spec(config).input_space(low, high, config.vocab_size)

    def word_reading(self) -> tuple[str | None, bool]:
        """How the run's task reads a word as a token: (the token of a word outside the
        vocabulary, whether every run of digits reads as "@"); (None, False) for a task of tokens."""
        task = task_spec(self.train_config)
        return (UNK, task.replace_numbers) if isinstance(task, NlpTask) else (None, False)


def check_model_config(kind: object, config: object) -> None:
    """ValueError naming the first field of a saved model config that has the wrong type."""
    if kind not in MODEL_KINDS:
        raise ValueError(f'"model_kind" must be one of {", ".join(MODEL_KINDS)}, got {kind!r}')
    if kind == "program":
        check_fields(ProgramConfig, config, "model")
    else:
        check_fields(StandardConfig, {k: v for k, v in (config or {}).items() if k not in PROGRAM_ONLY}
                     if isinstance(config, dict) else config, "model")


def load_run(run_dir: Path) -> LoadedRun:
    """Read a run directory written by `train`; RunError when missing or corrupt."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise runio.RunError(f"{run_dir} is a file; name the run directory that holds it ({run_dir.parent})")
    if not run_dir.is_dir():
        raise runio.RunError(f"run directory {run_dir} does not exist")
    config = runio.read_json(run_dir / "config.json")
    try:
        train_config = TrainConfig.from_dict(config.get("train"))
        train_config.check()
        kind = config.get("model_kind")
        check_model_config(kind, config.get("model"))
        model = build_model(kind, config["model"])
        for name in ("input_vocab", "label_vocab"):
            if not fits(config.get(name), list[str]):
                raise ValueError(f'"{name}" must be a list of strings')
        input_vocab = Vocab.from_json(config["input_vocab"])
        label_vocab = Vocab.from_json(config["label_vocab"])
    except (KeyError, TypeError, ValueError) as err:
        raise runio.RunError(f"{run_dir / 'config.json'} is incomplete or corrupt: {err}") from None
    tensors = runio.load_tensors(run_dir / "model.safetensors")
    try:
        model.load_state_dict(tensors)
    except RuntimeError:
        raise runio.RunError(f"{run_dir / 'model.safetensors'} does not match config.json") from None
    model.eval()
    if isinstance(model, TransformerProgram):
        model.apply_gates()
        model.points = model.config.classifier_step > 0  # fine-tuning (prune) keeps its classifier in points
    return LoadedRun(run_dir, config, train_config, model, input_vocab, label_vocab)


def model_digest(run_dir: Path) -> str:
    """sha256 of a run's model: its config (as JSON, keys sorted) and its weights file."""
    run_dir = Path(run_dir)
    config = runio.read_json(run_dir / "config.json")
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode("utf-8"))
    try:
        digest.update((run_dir / "model.safetensors").read_bytes())
    except FileNotFoundError:
        raise runio.RunError(f"{run_dir / 'model.safetensors'} is missing") from None
    return digest.hexdigest()
