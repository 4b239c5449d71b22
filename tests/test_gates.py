"""L0 gates (--sparsity): training closes gates, closed gates are pruned parts and unread
variables of the saved run, and its programs are proved like any other."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from transformer_programs.cli import main
from transformer_programs.config import LATER_SETTINGS, TrainConfig
from transformer_programs.experiments.ledger import config_key
from transformer_programs.model.gates import Gates
from transformer_programs.model.program_config import part_names
from transformer_programs.prune import PruneConfig, prune
from transformer_programs.runs import load_run
from transformer_programs.train import batch_loss, train

ROOT = Path(__file__).resolve().parents[1]


def test_a_gate_samples_within_0_and_1_and_closes_with_its_logit() -> None:
    gates = Gates(3)
    with torch.no_grad():
        gates.logits.copy_(torch.tensor([-10.0, 0.0, 10.0]))
    samples = torch.stack([gates.sample(torch.Generator().manual_seed(n)) for n in range(200)])  # (200, 3)
    assert samples.min() >= 0 and samples.max() <= 1
    assert (samples[:, 0] == 0).all() and (samples[:, 2] == 1).all()  # exactly closed, exactly open
    assert 0 < (samples[:, 1] == 0).float().mean() < 1  # a gate in between is sometimes closed
    assert gates.closed().tolist() == [True, False, False]
    probability = gates.open_probability()
    assert probability[0] < 0.01 < probability[1] < probability[2] and probability[2] > 0.99


def test_sparsity_closes_gates_and_the_run_keeps_them_as_pruning(tmp_path: Path, capsys) -> None:
    settings = dict(task="hist", epochs=20, n_examples=2000, batch_size=64)
    train(TrainConfig(**settings, sparsity=0.05), tmp_path / "gated", quiet=True)
    run = load_run(tmp_path / "gated")
    config = json.loads((tmp_path / "gated" / "config.json").read_text())
    assert config["model"]["gates"] is True and config["train"]["sparsity"] == 0.05
    pruned, unread = run.model.config.pruned, run.model.config.unread
    closed = run.model.part_gates.closed().tolist()
    assert sorted(pruned) == sorted(name for name, shut in zip(part_names(run.model.config), closed) if shut)
    assert pruned and unread and all(value == 0 for value in pruned.values())
    results = json.loads((tmp_path / "gated" / "results.json").read_text())
    assert results["test"]["accuracy"] >= 0.95  # of the pruned model: evaluated after the gates were applied
    assert main(["eval", str(tmp_path / "gated")]) == 0  # the reloaded model gives the recorded accuracy
    assert f"test {results['test']['accuracy']:.4f}" in capsys.readouterr().out
    assert main(["decompile", str(tmp_path / "gated"), "--quiet"]) == 0
    record = json.loads((tmp_path / "gated" / "verification.json").read_text())
    assert all(report["proof"]["unproved"] == [] for report in record["programs"].values())
    assert load_run(tmp_path / "gated").model.config.pruned == pruned  # decompile changed nothing
    pruned_run = prune(tmp_path / "gated", tmp_path / "pruned", PruneConfig(finetune_epochs=0))
    assert pruned_run["pruning"]["before"]["test"] == results["test"]["accuracy"]  # starts from the gated model
    assert pruned_run["pruning"]["pruned"].keys() >= pruned.keys()


def test_a_ledger_record_written_before_later_settings_keeps_its_key() -> None:
    """Settings added later (--sparsity, --classifier-step) leave the key of a run at their default
    unchanged, so the protocol does not run recorded trials again."""
    record_path = next((ROOT / "results" / "grid" / "hist").glob("*.json"))
    record = json.loads(record_path.read_text())
    assert not set(LATER_SETTINGS) & set(record["config"])
    settings = {**LATER_SETTINGS, **record["config"], "train_lengths": tuple(record["config"]["train_lengths"])}
    assert config_key(TrainConfig(**settings)) == record["key"]
    assert config_key(TrainConfig(**{**settings, "sparsity": 0.01})) != record["key"]
    assert config_key(TrainConfig(**{**settings, "classifier_step": 0.25})) != record["key"]
    assert config_key(TrainConfig(**{**settings, "d_values": 20})) != record["key"]
    assert config_key(TrainConfig(**{**settings, "sparsity": 0.01, "target_parts": 2})) != config_key(
        TrainConfig(**{**settings, "sparsity": 0.01}))


def test_a_target_counts_only_the_parts_above_it() -> None:
    model = load_model_with_gates(parts=[3.0] * 4 + [-10.0] * 2, reads=[3.0, -10.0])
    open_parts = model.part_gates.open_probability().sum()
    reads = model.read_gates.open_probability().sum()
    assert 3.9 < open_parts.item() < 4.0
    assert torch.isclose(model.sparsity_penalty(), open_parts + reads)
    assert torch.isclose(model.sparsity_penalty(target_parts=2), open_parts - 2 + reads)
    assert torch.isclose(model.sparsity_penalty(target_parts=5), reads)  # fewer open than the target: no pressure


def load_model_with_gates(parts: list[float], reads: list[float]):
    """A one-layer gated model whose gate logits are `parts` and `reads` (padded with open ones)."""
    from transformer_programs.model.program_config import ProgramConfig
    from transformer_programs.model.program_model import TransformerProgram

    model = TransformerProgram(ProgramConfig(n_tokens=4, n_labels=3, max_len=4, layers=1, heads_cat=2, heads_num=2,
                                             mlps_cat=1, mlps_num=1, gates=True))
    with torch.no_grad():
        model.part_gates.logits.copy_(torch.tensor(parts))
        model.read_gates.logits.fill_(3.0)
        model.read_gates.logits[: len(reads)] = torch.tensor(reads)
    return model


def test_the_training_loss_adds_the_targeted_penalty_and_the_flag_reaches_the_run(tmp_path: Path, capsys) -> None:
    model = load_model_with_gates(parts=[3.0] * 4 + [-10.0] * 2, reads=[3.0, -10.0])
    inputs, labels = torch.tensor([[1, 2, 3, 2]]), torch.tensor([[0, 1, 2, 1]])  # (1, 4)
    plain = batch_loss(model, inputs, labels, 1.0, torch.Generator().manual_seed(0))
    targeted = batch_loss(model, inputs, labels, 1.0, torch.Generator().manual_seed(0), sparsity=0.5, target_parts=2)
    assert torch.isclose(targeted - plain, 0.5 * model.sparsity_penalty(target_parts=2))
    flags = ["train", "hist", "--epochs", "2", "--n-examples", "300", "--quiet", "--sparsity", "0.05"]
    assert main([*flags, "--target-parts", "3", "--out", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["target_parts"] == 3
    assert main([*flags[:-2], "--target-parts", "3", "--out", str(tmp_path / "other")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "--target-parts needs --sparsity" in error
