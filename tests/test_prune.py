"""Pruning: parts removed from a briefly trained run, the pruned run saved, its program exact."""

from __future__ import annotations

import json
import shutil

import pytest

from transformer_programs.cli import main
from transformer_programs.model.program_config import part_names
from transformer_programs.program import extract
from transformer_programs.program.decompile import decompile_run
from transformer_programs.program.ir import classifier_reads, component_reads
from transformer_programs.prune import PruneConfig, prune
from transformer_programs.runs import load_run
from transformer_programs.train import evaluate

TINY = dict(task="sort", epochs=3, n_examples=39, vocab_size=3, train_lengths=(1, 3), layers=2)


@pytest.fixture
def tiny_run(trained):
    """A briefly trained tiny sort run (pruning only reads it)."""
    return trained(**TINY)


def test_a_pruned_run_is_smaller_within_budget_and_its_program_exact(tiny_run, tmp_path):
    out = tmp_path / "pruned"
    config = PruneConfig(max_drop=0.05, finetune_epochs=1)
    results = prune(tiny_run, out, config)
    pruning = results["pruning"]
    assert pruning["kept"]["parts"] < pruning["of"]["parts"] and pruning["kept"]["reads"] < pruning["of"]["reads"]
    assert results["val"]["accuracy"] >= pruning["before"]["val"] - config.max_drop
    pruned = load_run(out)
    assert pruned.model.config.pruned == pruning["pruned"] and pruned.model.config.unread == pruning["unread"]
    again = evaluate(pruned.model, *pruned.dataset.tensors["test"])
    assert again["accuracy"] == results["test"]["accuracy"]
    record = decompile_run(out)
    assert record["disagreements"] == 0 and record["exhaustive"] and record["inputs"] == 39
    assert json.loads((out / "results.json").read_text(encoding="utf-8")) == results


def test_every_kept_part_is_read_by_something(tiny_run, tmp_path):
    results = prune(tiny_run, tmp_path / "pruned", PruneConfig(max_drop=0.02, finetune_epochs=0))
    run = load_run(tmp_path / "pruned")
    program = extract(run.model, run.input_vocab, run.label_vocab)
    needed = set(classifier_reads(program))
    for layer in reversed(program.layers):
        for component in reversed(layer.components()):
            assert component.name in needed, f"{component.name} is kept but nothing reads it"
            needed.update(component_reads(component))
    kept = [name for name in part_names(run.model.config) if name not in results["pruning"]["pruned"]]
    assert len(kept) == results["pruning"]["kept"]["parts"]


def test_a_zero_budget_never_loses_validation_accuracy(tiny_run, tmp_path):
    results = prune(tiny_run, tmp_path / "pruned", PruneConfig(max_drop=0.0, finetune_epochs=1))
    assert results["val"]["accuracy"] >= results["pruning"]["before"]["val"]


def test_prune_refuses_a_directory_that_holds_something(tiny_run, tmp_path, capsys):
    out = tmp_path / "pruned"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    assert main(["prune", str(tiny_run), "--out", str(out)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_prune_command_prints_before_and_after(tiny_run, tmp_path, capsys):
    out = tmp_path / "pruned"
    assert main(["prune", str(tiny_run), "--out", str(out), "--max-drop", "0.05"]) == 0
    printed = capsys.readouterr().out
    assert "parts and" in printed and "->" in printed and "0 disagreements" in printed and "program lines:" in printed
    program = (out / "program.py").read_text(encoding="utf-8")
    assert (out / "program_full.py").is_file()
    assert (program in printed) == (program.count("\n") <= 150)  # a short program is printed whole


def test_prune_counts_the_lines_of_the_program_the_run_holds(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert main(["decompile", str(run)]) == 0
    assert main(["prune", str(run), "--out", str(tmp_path / "pruned"), "--max-drop", "0.05"]) == 0
    lines = (run / "program.py").read_text(encoding="utf-8").count("\n")
    assert f"program lines: {lines} before pruning" in capsys.readouterr().out
