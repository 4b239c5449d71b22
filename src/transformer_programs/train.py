"""Training loop, temperature schedule, evaluation, checkpoint and resume of one run."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import __version__, runio
from .config import LATER_SETTINGS, TrainConfig
from .data import Dataset, build_dataset
from .model import build_model, training_bytes
from .model.points import points_start
from .model.program_model import TransformerProgram
from .model.standard import StandardTransformer
from .progress import Progress
from .runs import model_config
from .threads import thread_count, torch_threads
from .vocab import Vocab


def temperature(step: int, total_steps: int, tau_start: float, tau_end: float) -> float:
    """Geometric annealing from tau_start (step 0) to tau_end (last step)."""
    if total_steps <= 1:
        return tau_end
    return tau_start * (tau_end / tau_start) ** (step / (total_steps - 1))


def without_padding(inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch without its trailing columns of padding, (B, T) -> (B, T') each.

    Splits are padded to the run's position range, which for length generalization reaches the
    longest test input (n + 10 tokens, twice n for Dyck); attention costs the square of the width,
    and no model reads a pad position (keys are masked, pad labels are not scored), so the
    columns past the batch's longest input only cost time.
    """
    used = ((inputs != 0) | (labels != 0)).any(0)  # (T,)
    width = int(used.nonzero().max()) + 1 if bool(used.any()) else 1
    return inputs[:, :width], labels[:, :width]  # (B, T') each


def batch_loss(
    model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, tau: float, generator: torch.Generator,
    sparsity: float = 0.0, target_parts: int = 0,
) -> torch.Tensor:
    """The training objective: mean cross-entropy over the batch's scored (non-pad) labels, plus
    `sparsity` times the expected number of open gates (a program trained with --sparsity; with
    `target_parts`, of open parts only those above it)."""
    inputs, labels = without_padding(inputs, labels)  # (B, T') each
    logits = model(inputs, tau, generator)  # (B, T', L)
    loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=0)
    return loss + sparsity * model.sparsity_penalty(target_parts) if sparsity else loss


def sparsity_weight(config: TrainConfig, step: int, total_steps: int) -> float:
    """--sparsity, ramped up linearly over the first half of training: gates close only once the
    parts have had time to learn what they are for."""
    return config.sparsity * min(1.0, 2 * step / max(total_steps, 1))


@torch.no_grad()
def entity_scores(predicted: list[list[str]], expected: list[list[str]]) -> dict[str, float]:
    """Entity-level precision, recall and F1 of IOB2 tag sequences (seqeval, strict, as the paper)."""
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    options = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    return {
        "precision": float(precision_score(expected, predicted, **options)),
        "recall": float(recall_score(expected, predicted, **options)),
        "f1": float(f1_score(expected, predicted, **options)),
    }


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, entities: Vocab | None = None, chunk: int = 4096
) -> dict:
    """Token accuracy over scored positions and exact match over whole sequences (discrete model);
    with `entities` (the label vocabulary of IOB2 tags), entity precision, recall and F1 too.
    "score" is what selects the kept epoch: F1 where there are entities, else accuracy."""
    correct_tokens, scored_tokens, correct_seqs, scored_seqs = 0, 0, 0, 0
    predicted_tags, expected_tags = [], []
    for start in range(0, len(inputs), chunk):
        x, y = without_padding(inputs[start : start + chunk], labels[start : start + chunk])  # (n, T') each
        scored = y != 0  # (n, T')
        predicted = model.predict(x)  # (n, T')
        hit = (predicted == y) & scored  # (n, T')
        correct_tokens += int(hit.sum())
        scored_tokens += int(scored.sum())
        has_label = scored.any(1)  # (n,)
        correct_seqs += int(((hit == scored).all(1) & has_label).sum())
        scored_seqs += int(has_label.sum())
        if entities is not None:
            for row_predicted, row_expected, row_scored in zip(predicted.tolist(), y.tolist(), scored.tolist()):
                predicted_tags.append([entities.tokens[p] for p, s in zip(row_predicted, row_scored) if s])
                expected_tags.append([entities.tokens[e] for e, s in zip(row_expected, row_scored) if s])
    results = {
        "accuracy": correct_tokens / max(scored_tokens, 1),
        "exact_match": correct_seqs / max(scored_seqs, 1),
        "tokens": scored_tokens,
        "sequences": scored_seqs,
    }
    if entities is not None:
        results.update(entity_scores(predicted_tags, expected_tags))
    results["score"] = results.get("f1", results["accuracy"])
    return results


def evaluate_split(model: torch.nn.Module, data: Dataset, split: str) -> dict:
    """`evaluate` on one of the run's splits, with entity scores for tagging tasks."""
    return evaluate(model, *data.tensors[split], entities=data.label_vocab if data.tagging else None)


@contextlib.contextmanager
def denormals_flushed() -> Iterator[None]:
    """Flush denormal floats to zero while relaxed training steps run, and only then.

    At low temperatures softmax outputs underflow into denormals, which x86 CPUs process several
    times slower; the relaxed steps lose nothing by flushing them. The discrete model must not
    depend on the flag (a subnormal weight can decide an argmax), so evaluation runs without it.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def available_bytes() -> int | None:
    """Memory this machine has free now (MemAvailable), or None where it cannot tell."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def check_memory(config: TrainConfig, arch: dict) -> None:
    """ValueError, before anything is allocated or written, for a model this machine cannot hold."""
    needed, free = training_bytes(config.model, arch, config.batch_size), available_bytes()
    if free is not None and needed > free:
        raise ValueError(
            f"this model needs about {needed / 2**30:.1f} GiB to train (value space d={max(arch['n_tokens'], arch['max_len'])}, "
            f"batch {config.batch_size}) and {free / 2**30:.1f} GiB is free; lower --max-len, --vocab-size or --batch-size"
        )


def run_record(config: TrainConfig, arch: dict, data: Dataset) -> dict:
    """What config.json holds: the run's settings, model, vocabularies and data notes."""
    record = {
        "train": asdict(config),
        "model_kind": config.model,
        "model": arch,
        "input_vocab": data.input_vocab.to_json(),
        "label_vocab": data.label_vocab.to_json(),
        "notes": data.splits.notes,
        "version": __version__,  # of the code that trained it
    }
    return json.loads(json.dumps(record))  # tuples as lists, as they read back


def check_out(out: Path, resume: bool, record: dict) -> None:
    """RunError unless `out` is new, empty, or (with --resume) this same run."""
    runio.check_output_dir(out, "config.json", "run", ignored=(".lock",))
    holds_run = (out / "config.json").exists()
    if holds_run and not resume:
        raise runio.RunError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if holds_run and _settings(runio.read_json(out / "config.json")) != _settings(record):
        raise runio.RunError(f"{out} holds a run with a different configuration; resume needs the same flags")


def _settings(record: dict) -> dict:
    """A config.json record without the version that wrote it, and with each setting added since
    at the value it then had: a run resumes under a newer version."""
    settings = {key: value for key, value in record.items() if key != "version"}
    if isinstance(settings.get("train"), dict):
        settings["train"] = {**LATER_SETTINGS, **settings["train"]}
    return settings


def train(config: TrainConfig, out: Path, resume: bool = False, quiet: bool = False, threads: int | None = None) -> dict:
    """Train one run into `out` on `threads` torch threads (see torch_threads) and return its
    results (also written to out/results.json)."""
    config = config.resolved()
    threads = thread_count(threads)
    out = Path(out)
    data = build_dataset(config)
    arch = model_config(config, data)
    check_memory(config, arch)
    record = run_record(config, arch, data)
    check_out(out, resume, record)
    with runio.locked(out), torch_threads(threads):
        return _train(config, data, arch, record, out, resume, quiet)


def _train(config: TrainConfig, data: Dataset, arch: dict, record: dict, out: Path, resume: bool, quiet: bool) -> dict:
    """The training loop of `train`, in a locked run directory."""
    state = _start_state(config, arch, record, out, resume, data.vectors)
    model, optimizer, generator, metrics = state["model"], state["optimizer"], state["generator"], state["metrics"]
    best = state["best"]
    train_x, train_y = data.tensors["train"]
    steps_per_epoch = math.ceil(len(train_x) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    is_program = config.model == "program"
    rounds = is_program and config.classifier_step > 0
    rounding_from = points_start(config.epochs) if rounds else 0
    bar = Progress("epochs", config.epochs, quiet, initial=len(metrics))
    for epoch in range(len(metrics), config.epochs):
        if should_stop(metrics, best["epoch"] if best else 0, config.early_stop) and not (rounds and epoch <= rounding_from):
            break
        started = time.perf_counter()
        model.train()
        if rounds and epoch >= rounding_from:
            model.points = True  # the classifier reads its weights rounded from here on
        order = torch.randperm(len(train_x), generator=generator)  # (N,)
        loss_sum, tau = 0.0, 0.0
        with denormals_flushed():
            for batch in range(steps_per_epoch):
                index = order[batch * config.batch_size : (batch + 1) * config.batch_size]
                step = epoch * steps_per_epoch + batch
                tau = temperature(step, total_steps, config.tau_start, config.tau_end)
                loss = batch_loss(model, train_x[index], train_y[index], tau, generator,
                                  sparsity_weight(config, step, total_steps), config.target_parts)
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
        if is_program:
            model.apply_gates()  # a closed gate's part is pruned from here on
            model.round_classifier()
        val = evaluate_split(model, data, "val")
        row = {
            "epoch": epoch + 1,
            "loss": loss_sum / steps_per_epoch,
            "temperature": tau if is_program else "",
            "val_accuracy": val["accuracy"],
            **({"val_f1": val["f1"]} if "f1" in val else {}),
            "seconds": time.perf_counter() - started,
        }
        metrics.append(row)
        # ties: the later, more annealed model; with --classifier-step, only a model of rounded points
        if best is None or val["score"] >= best["val_accuracy"] or (rounds and epoch == rounding_from):
            weights = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
            best = {"epoch": epoch + 1, "val_accuracy": val["score"], "weights": weights}
        _save_checkpoint(out, model, optimizer, generator, metrics, best)
        bar.update(1, f"loss {row['loss']:.3f}, tau {tau:.3f}, val {val['accuracy']:.4f}")
    bar.close()
    return _finish(config, data, model, metrics, best, out)


EARLY_STOP_TAU = 0.1  # early stopping waits until the temperature is this low: the kept model is a sharp one


def validation_score(row: dict) -> float:
    """The score an epoch's metrics row is selected on: entity F1 (NER), else accuracy."""
    return float(row.get("val_f1", row["val_accuracy"]))


def should_stop(metrics: list[dict], best_epoch: int, patience: int) -> bool:
    """Early stop: once the temperature is at most EARLY_STOP_TAU, when validation has been perfect
    for the last `patience` epochs or its best is `patience` epochs old (0: never)."""
    if not patience or len(metrics) < patience or metrics[-1]["temperature"] in ("", None):
        return False
    if float(metrics[-1]["temperature"]) > EARLY_STOP_TAU:
        return False
    scores = [validation_score(row) for row in metrics[-patience:]]
    return all(score == 1.0 for score in scores) or len(metrics) - best_epoch >= patience


def _start_state(config: TrainConfig, arch: dict, record: dict, out: Path, resume: bool,
                 vectors: np.ndarray | None) -> dict:
    """Fresh model (its word embeddings started from `vectors`, where given), optimizer and RNG,
    or those of the last finished epoch when resuming."""
    torch.manual_seed(config.init_seed())
    model = build_model(config.model, arch)
    if vectors is not None:
        if isinstance(model, TransformerProgram) and model.embed is not None:
            model.embed.initialise(torch.from_numpy(vectors))
        elif isinstance(model, StandardTransformer):
            model.initialise_tokens(torch.from_numpy(vectors))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)  # one kernel per step, not ~8 ops per tensor
    generator = torch.Generator().manual_seed(config.init_seed())
    checkpoint = out / "checkpoint.safetensors"
    metrics: list[dict] = []
    best = None
    if resume and checkpoint.exists():
        tensors = runio.load_tensors(checkpoint)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        runio.restore_optimizer(optimizer, tensors)
        generator.set_state(tensors["rng"])
        try:
            epochs = json.loads(runio.read_metadata(checkpoint)["record"])
        except (KeyError, json.JSONDecodeError):
            epochs = {}
        weights = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        if not isinstance(epochs, dict) or not {"metrics", "best_epoch", "best_val_accuracy"} <= set(epochs) or not weights:
            raise runio.RunError(f"{checkpoint} is incomplete or from an older version; start a new run")
        metrics = epochs["metrics"]
        best = {"epoch": epochs["best_epoch"], "val_accuracy": epochs["best_val_accuracy"], "weights": weights}
    runio.write_json(out / "config.json", record)
    return {"model": model, "optimizer": optimizer, "generator": generator, "metrics": metrics, "best": best}


def _save_checkpoint(out: Path, model, optimizer, generator: torch.Generator, metrics: list[dict], best: dict) -> None:
    """Everything resume needs as one file, written atomically: the tensors, with the epochs'
    record in the file's metadata, so the two can never come from different epochs."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v for k, v in best["weights"].items()})
    tensors.update(runio.optimizer_tensors(optimizer))
    tensors["rng"] = generator.get_state()
    record = {"metrics": metrics, "best_epoch": best["epoch"], "best_val_accuracy": best["val_accuracy"]}
    runio.save_tensors(out / "checkpoint.safetensors", tensors, metadata={"record": json.dumps(record)})
    runio.write_csv(out / "metrics.csv", metrics)


def _finish(config: TrainConfig, data: Dataset, model, metrics: list[dict], best: dict, out: Path) -> dict:
    """Keep the epoch with the best validation accuracy (the latest on ties); its results."""
    model.load_state_dict(best["weights"])
    if isinstance(model, TransformerProgram):
        model.apply_gates()
    runio.save_tensors(out / "model.safetensors", dict(model.state_dict()))
    seconds = sorted(row["seconds"] for row in metrics)
    results = {name: evaluate_split(model, data, name) for name in ("train", "val", "test")}
    results["seconds_per_epoch"] = seconds[len(seconds) // 2] if seconds else None
    results["seconds"] = sum(seconds)  # every epoch's, whichever sitting ran it: a resumed run counts them all
    results["epochs"] = len(metrics)
    results["stopped_early"] = len(metrics) < config.epochs
    results["selected_epoch"] = best["epoch"]
    results["threads"] = torch.get_num_threads()
    results["notes"] = data.splits.notes
    runio.write_json(out / "results.json", results)
    return results
