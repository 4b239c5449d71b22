"""Training loop, temperature schedule, evaluation, checkpoint and resume of one run."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import runio
from .data import Splits, make_splits
from .model import MODEL_KINDS, build_model
from .model.program_model import ATTENTION_KINDS
from .tasks import TaskSpec, get_task
from .tasks.arithmetic import make_addition
from .vocab import Vocab

# Optimisation defaults per model kind: the paper's (Transformer Programs; appendix baseline).
OPTIM_DEFAULTS = {
    "program": {"epochs": 250, "lr": 5e-2, "batch_size": 512},
    "standard": {"epochs": 100, "lr": 3e-4, "batch_size": 50},
}
ARCH_FIELDS = ("layers", "heads_cat", "heads_num", "mlps_cat", "mlps_num")


@dataclass
class TrainConfig:
    """Everything that defines a run; None means the task's or the model kind's default."""

    task: str
    model: str = "program"  # "program" (Transformer Program) or "standard" (baseline)
    seed: int = 0
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    tau_start: float = 3.0  # Gumbel-softmax temperature, annealed geometrically per step
    tau_end: float = 0.01
    n_examples: int = 20000
    vocab_size: int | None = None
    train_lengths: tuple[int, int] | None = None  # content lengths of train and val
    test_lengths: tuple[int, int] | None = None  # content lengths of test (length generalization)
    reverse_sum: bool = False  # addition tasks: least significant digit first
    max_len: int | None = None  # position range; default: the longest sequence of any split
    layers: int | None = None
    heads_cat: int | None = None
    heads_num: int | None = None
    mlps_cat: int | None = None
    mlps_num: int | None = None
    n_embed_vars: int = 0
    attention: str | None = None  # program model: "sharp" or "soft" relaxed attention
    extra: dict = field(default_factory=dict)  # model-kind specific settings (e.g. hidden size)

    def resolved(self) -> "TrainConfig":
        """A copy with every default filled in, validated; raises ValueError naming the problem."""
        if self.model not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {self.model!r}; choose one of {', '.join(MODEL_KINDS)}")
        spec = task_spec(self)
        values = asdict(self)
        for key, default in OPTIM_DEFAULTS[self.model].items():
            values[key] = default if values[key] is None else values[key]
        for key in ARCH_FIELDS:
            values[key] = getattr(spec.model, key) if values[key] is None else values[key]
        values["attention"] = values["attention"] or spec.model.attention
        values["vocab_size"] = values["vocab_size"] or spec.vocab_size
        values["train_lengths"] = tuple(values["train_lengths"] or (spec.min_len, spec.max_len))
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
        if self.max_len is not None and self.max_len < 1:
            raise ValueError("--max-len must be at least 1")
        if self.layers < 1:
            raise ValueError("--layers must be at least 1")
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"--attention must be one of {', '.join(ATTENTION_KINDS)}, got {self.attention!r}")
        if not (self.lr > 0 and 0 < self.tau_end <= self.tau_start):
            raise ValueError("need lr > 0 and 0 < tau_end <= tau_start")

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def task_spec(config: TrainConfig) -> TaskSpec:
    """The task of a run, with the addition variant's digit order applied."""
    spec = get_task(config.task)
    if config.reverse_sum:
        if not config.task.startswith("addition"):
            raise ValueError("--reverse-sum applies only to the addition tasks")
        spec = make_addition(reverse_sum=True, hints=config.task == "addition_hints")
    return spec


@dataclass
class Dataset:
    """Splits as strings and as padded id tensors, with their vocabularies."""

    splits: Splits
    input_vocab: Vocab
    label_vocab: Vocab
    max_len: int  # longest sequence of any split: the model's position range
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]  # split -> (inputs, labels), (N, max_len)


def build_dataset(config: TrainConfig) -> Dataset:
    """Generate the run's data (deterministic from its seed) and encode it."""
    spec = task_spec(config)
    splits = make_splits(
        spec,
        n_examples=config.n_examples,
        seed=config.seed,
        vocab_size=config.vocab_size,
        train_lengths=config.train_lengths,
        test_lengths=config.test_lengths,
    )
    longest_content = max(config.train_lengths[1], (config.test_lengths or (0, 0))[1])
    input_vocab = Vocab.build(spec.input_tokens(config.vocab_size, longest_content))
    label_vocab = Vocab.build(spec.label_tokens(config.vocab_size, longest_content))
    named = {"train": splits.train, "val": splits.val, "test": splits.test}
    longest = max(len(seq) for split in named.values() for seq in split.inputs)
    if config.max_len is not None and config.max_len < longest:
        raise ValueError(
            f"--max-len {config.max_len} is shorter than the longest sequence ({longest} tokens); "
            f"use at least {longest}"
        )
    max_len = config.max_len or longest
    tensors = {
        name: (input_vocab.encode(split.inputs, max_len), label_vocab.encode(split.labels, max_len))
        for name, split in named.items()
    }
    return Dataset(splits, input_vocab, label_vocab, max_len, tensors)


def model_config(config: TrainConfig, data: Dataset) -> dict:
    """The model's constructor arguments for this run."""
    base = {"n_tokens": len(data.input_vocab), "n_labels": len(data.label_vocab), "max_len": data.max_len}
    base["causal"] = task_spec(config).causal
    for key in ARCH_FIELDS + ("n_embed_vars", "attention"):
        base[key] = getattr(config, key)
    return {**base, **config.extra}


def temperature(step: int, total_steps: int, config: TrainConfig) -> float:
    """Geometric annealing from tau_start (step 0) to tau_end (last step)."""
    if total_steps <= 1:
        return config.tau_end
    ratio = config.tau_end / config.tau_start
    return config.tau_start * ratio ** (step / (total_steps - 1))


def batch_loss(
    model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, tau: float, generator: torch.Generator
) -> torch.Tensor:
    """The training objective: mean cross-entropy over the batch's scored (non-pad) labels."""
    logits = model(inputs, tau, generator)  # (B, T, L)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=0)


@torch.no_grad()
def evaluate(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, chunk: int = 4096) -> dict:
    """Token accuracy over scored positions and exact match over whole sequences (discrete model)."""
    correct_tokens, scored_tokens, correct_seqs, scored_seqs = 0, 0, 0, 0
    for start in range(0, len(inputs), chunk):
        x, y = inputs[start : start + chunk], labels[start : start + chunk]  # (n, T)
        scored = y != 0  # (n, T)
        hit = (model.predict(x) == y) & scored  # (n, T)
        correct_tokens += int(hit.sum())
        scored_tokens += int(scored.sum())
        has_label = scored.any(1)  # (n,)
        correct_seqs += int(((hit == scored).all(1) & has_label).sum())
        scored_seqs += int(has_label.sum())
    return {
        "accuracy": correct_tokens / max(scored_tokens, 1),
        "exact_match": correct_seqs / max(scored_seqs, 1),
        "tokens": scored_tokens,
        "sequences": scored_seqs,
    }


def _progress(total: int, initial: int, quiet: bool) -> tqdm:
    disable = quiet or not sys.stderr.isatty()
    return tqdm(total=total, initial=initial, desc="epochs", disable=disable, leave=False)


def train(config: TrainConfig, out: Path, resume: bool = False, quiet: bool = False) -> dict:
    """Train one run into `out` and return its results (also written to out/results.json)."""
    config = config.resolved()
    # At low temperatures softmax outputs underflow into denormal floats, which x86 CPUs
    # process several times slower; flushing them to zero changes no result we read.
    torch.set_flush_denormal(True)
    out = Path(out)
    data = build_dataset(config)
    arch = model_config(config, data)
    state = _start_state(config, arch, data, out, resume)
    model, optimizer, generator, metrics = state["model"], state["optimizer"], state["generator"], state["metrics"]
    best = state["best"]
    train_x, train_y = data.tensors["train"]
    steps_per_epoch = math.ceil(len(train_x) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    is_program = config.model == "program"
    bar = _progress(config.epochs, len(metrics), quiet)
    for epoch in range(len(metrics), config.epochs):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_x), generator=generator)  # (N,)
        loss_sum, tau = 0.0, 0.0
        for batch in range(steps_per_epoch):
            index = order[batch * config.batch_size : (batch + 1) * config.batch_size]
            tau = temperature(epoch * steps_per_epoch + batch, total_steps, config)
            loss = batch_loss(model, train_x[index], train_y[index], tau, generator)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise ValueError(
                    f"training diverged: the loss is {loss_value} at epoch {epoch + 1}, step {batch + 1}; "
                    f"lower --lr (now {config.lr}); the run keeps its last finished epoch"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss_value
        model.eval()
        val = evaluate(model, *data.tensors["val"])
        row = {
            "epoch": epoch + 1,
            "loss": loss_sum / steps_per_epoch,
            "temperature": tau if is_program else "",
            "val_accuracy": val["accuracy"],
            "seconds": time.perf_counter() - started,
        }
        metrics.append(row)
        if best is None or val["accuracy"] >= best["val_accuracy"]:  # ties: the later, more annealed model
            weights = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
            best = {"epoch": epoch + 1, "val_accuracy": val["accuracy"], "weights": weights}
        _save_checkpoint(out, model, optimizer, generator, metrics, best)
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.3f}", tau=f"{tau:.3f}", val=f"{val['accuracy']:.4f}")
    bar.close()
    return _finish(config, data, model, metrics, best, out)


def _start_state(config: TrainConfig, arch: dict, data: Dataset, out: Path, resume: bool) -> dict:
    """Fresh model, optimizer and RNG, or those of the last finished epoch when resuming."""
    torch.manual_seed(config.seed)
    model = build_model(config.model, arch)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)  # one kernel per step, not ~8 ops per tensor
    generator = torch.Generator().manual_seed(config.seed)
    run_config = {
        "train": asdict(config),
        "model_kind": config.model,
        "model": arch,
        "input_vocab": data.input_vocab.to_json(),
        "label_vocab": data.label_vocab.to_json(),
        "notes": data.splits.notes,
    }
    checkpoint = out / "checkpoint.safetensors"
    metrics: list[dict] = []
    best = None
    if resume and checkpoint.exists():
        saved = runio.read_json(out / "config.json")
        if json.loads(json.dumps(run_config)) != saved:
            raise runio.RunError(f"{out} holds a run with a different configuration; resume needs the same flags")
        tensors = runio.load_tensors(checkpoint)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        runio.restore_optimizer(optimizer, tensors)
        generator.set_state(tensors["rng"])
        record = runio.read_json(out / "checkpoint.json")
        weights = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        if not {"metrics", "best_epoch", "best_val_accuracy"} <= set(record) or not weights:
            raise runio.RunError(f"{out / 'checkpoint.json'} is incomplete or from an older version; start a new run")
        metrics = record["metrics"]
        best = {"epoch": record["best_epoch"], "val_accuracy": record["best_val_accuracy"], "weights": weights}
    elif (out / "config.json").exists() and not resume:
        raise runio.RunError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    runio.write_json(out / "config.json", run_config)
    return {"model": model, "optimizer": optimizer, "generator": generator, "metrics": metrics, "best": best}


def _save_checkpoint(out: Path, model, optimizer, generator: torch.Generator, metrics: list[dict], best: dict) -> None:
    """Everything resume needs, written atomically: the tensors first, then the epoch record."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v for k, v in best["weights"].items()})
    tensors.update(runio.optimizer_tensors(optimizer))
    tensors["rng"] = generator.get_state()
    runio.save_tensors(out / "checkpoint.safetensors", tensors)
    record = {"metrics": metrics, "best_epoch": best["epoch"], "best_val_accuracy": best["val_accuracy"]}
    runio.write_json(out / "checkpoint.json", record)
    runio.write_csv(out / "metrics.csv", metrics)


def _finish(config: TrainConfig, data: Dataset, model, metrics: list[dict], best: dict, out: Path) -> dict:
    """Keep the epoch with the best validation accuracy (the latest on ties); its results."""
    model.load_state_dict(best["weights"])
    runio.save_tensors(out / "model.safetensors", dict(model.state_dict()))
    seconds = sorted(row["seconds"] for row in metrics)
    results = {name: evaluate(model, *data.tensors[name]) for name in ("train", "val", "test")}
    results["seconds_per_epoch"] = seconds[len(seconds) // 2] if seconds else None
    results["epochs"] = len(metrics)
    results["selected_epoch"] = best["epoch"]
    results["notes"] = data.splits.notes
    runio.write_json(out / "results.json", results)
    return results


@dataclass
class LoadedRun:
    """A finished run read back from disk."""

    path: Path
    config: dict
    train_config: TrainConfig
    model: torch.nn.Module
    input_vocab: Vocab
    label_vocab: Vocab

    @property
    def dataset(self) -> Dataset:
        """The run's data, regenerated from its seed."""
        return build_dataset(self.train_config)

    @property
    def splits(self) -> Splits:
        return self.dataset.splits


def load_run(run_dir: Path) -> LoadedRun:
    """Read a run directory written by `train`; RunError when missing or corrupt."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise runio.RunError(f"run directory {run_dir} does not exist")
    config = runio.read_json(run_dir / "config.json")
    try:
        train_config = TrainConfig.from_dict(config["train"])
        model = build_model(config["model_kind"], config["model"])
        input_vocab = Vocab.from_json(config["input_vocab"])
        label_vocab = Vocab.from_json(config["label_vocab"])
    except (KeyError, TypeError, ValueError) as err:
        raise runio.RunError(f"{run_dir / 'config.json'} is incomplete or corrupt ({err})") from None
    tensors = runio.load_tensors(run_dir / "model.safetensors")
    try:
        model.load_state_dict(tensors)
    except RuntimeError:
        raise runio.RunError(f"{run_dir / 'model.safetensors'} does not match config.json") from None
    model.eval()
    return LoadedRun(run_dir, config, train_config, model, input_vocab, label_vocab)
