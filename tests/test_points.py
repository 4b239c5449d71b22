"""Integer classifier points (--classifier-step): the classifier trains as multiples of a step,
the saved weights are exact multiples, the program prints them as integers, and pruning keeps them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from transformer_programs.cli import main
from transformer_programs.config import TrainConfig
from transformer_programs.model.points import check_step, points_start, rounded
from transformer_programs.prune import PruneConfig, prune
from transformer_programs.runs import load_run
from transformer_programs.train import train

STEP = 0.25


def on_grid(tensor: torch.Tensor, step: float) -> bool:
    return bool(torch.equal(tensor / step, torch.round(tensor / step)))


def test_rounding_is_on_the_grid_forward_and_straight_through_backward() -> None:
    weight = torch.tensor([0.1, 0.13, -0.4, 2.0], requires_grad=True)
    out = rounded(weight, STEP)
    assert out.tolist() == [0.0, 0.25, -0.5, 2.0]
    out.sum().backward()
    assert weight.grad.tolist() == [1.0, 1.0, 1.0, 1.0]


def test_steps_are_powers_of_two_and_rounding_takes_the_last_quarter() -> None:
    for step in (0, 0.25, 1, 16):
        check_step(step)
    for step in (0.3, -0.25, 32, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="power of two"):
            check_step(step)
    assert [points_start(epochs) for epochs in (1, 4, 12, 100)] == [0, 3, 9, 75]


def test_a_bad_step_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    assert main(["train", "hist", "--classifier-step", "0.3", "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "--classifier-step" in error and "power of two" in error
    assert not (tmp_path / "run").exists()


def test_a_points_run_saves_multiples_prints_integers_and_prunes_to_multiples(tmp_path: Path) -> None:
    settings = dict(task="hist", epochs=12, n_examples=2000, batch_size=64)
    results = train(TrainConfig(**settings, classifier_step=STEP), tmp_path / "run", quiet=True)
    assert results["selected_epoch"] > points_start(12)  # the kept model is one of rounded points
    run = load_run(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["classifier_step"] == STEP
    classifier = [run.model.classifier_cat, run.model.classifier_num, run.model.classifier_bias]
    assert all(on_grid(weights, STEP) for weights in classifier)
    assert not all(on_grid(weights, 1.0) for weights in classifier)  # a step finer than whole units was used
    assert main(["decompile", str(tmp_path / "run"), "--quiet"]) == 0
    record = json.loads((tmp_path / "run" / "verification.json").read_text())
    assert all(report["proof"]["unproved"] == [] for report in record["programs"].values())
    assert record["program_accuracy"]["test"] == results["test"]["accuracy"]
    code = (tmp_path / "run" / "program.py").read_text()
    weights = code[code.index("CLASSIFIER_BIAS"):code.index("def classify")]
    assert "." not in weights.replace("...", "")  # integer points: not one float
    pruned = prune(tmp_path / "run", tmp_path / "pruned", PruneConfig(finetune_epochs=1))
    model = load_run(tmp_path / "pruned").model
    assert pruned["pruning"]["before"]["test"] == results["test"]["accuracy"]
    assert all(on_grid(w, STEP) for w in (model.classifier_cat, model.classifier_num, model.classifier_bias))


def test_a_pooled_word_classifier_on_a_step_prints_as_integers_proved_on_every_input(tmp_path: Path) -> None:
    """A pooled classifier cannot be listed joint value by joint value; scaled by the power of two
    of its step, every score scales exactly, and the proof says so."""
    fixtures = Path(__file__).parent / "fixtures" / "nlp"
    out = tmp_path / "trec"
    assert main(["train", "trec", "--data-dir", str(fixtures / "trec"), "--embeddings", str(fixtures / "vectors.txt"),
                 "--epochs", "4", "--classifier-step", "0.25", "--out", str(out), "--quiet", "--program"]) == 0
    record = json.loads((out / "verification.json").read_text())
    assert record["disagreements"] == 0
    assert all(report["proof"] == {**report["proof"], "scope": "every input", "unproved": []}
               for report in record["programs"].values())
    code = (out / "program.py").read_text()
    weights = code[code.index("CLASSIFIER_BIAS"):code.index("def classify")]
    assert "f32(" not in weights and "." not in weights and any(c.isdigit() and c != "0" for c in weights)
    full = (out / "program_full.py").read_text()
    assert "f32(" in full[full.index("CLASSIFIER_BIAS"):]  # the full program keeps the model's weights
