"""Files the analysis commands and pruning write: never over a file they did not write, never a
half-written run, and never a program served without its proof (CLI and Python API alike)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import one_line_error
from safetensors.torch import load_file

import transformer_programs as tp
from transformer_programs import prune as prune_module
from transformer_programs import runio
from transformer_programs.cli import main

SMALL = dict(task="hist", epochs=1, n_examples=120, vocab_size=3, train_lengths=(1, 4))


@pytest.fixture
def run_dir(trained, copy_run) -> Path:
    """A copy of a briefly trained small hist run, decompiled."""
    run = copy_run(trained(**SMALL))
    assert main(["decompile", str(run)]) == 0
    return run


@pytest.mark.parametrize("command, default", [("circuit", "circuit.svg"), ("report", "report.html")])
def test_circuit_and_report_never_overwrite_a_file_they_did_not_write(run_dir, tmp_path, capsys, command, default):
    mine = tmp_path / "notes.txt"
    mine.write_text("mine\n")
    protected = [run_dir / "model.safetensors", run_dir / "program.py", run_dir / "config.json", mine]
    before = {path: path.read_bytes() for path in protected}
    for target in protected:
        assert main([command, str(run_dir), "--out", str(target)]) == 2
        assert "was not written by this command" in one_line_error(capsys)
    assert main([command, str(run_dir), "--out", str(tmp_path)]) == 2 and "is a directory" in one_line_error(capsys)
    beneath_a_file = mine / f"x.{default.split('.')[1]}"  # the file named, not the temporary one beside it
    assert main([command, str(run_dir), "--out", str(beneath_a_file)]) == 2
    assert one_line_error(capsys).startswith(f"tprog: error: cannot write {beneath_a_file} (")
    assert {path: path.read_bytes() for path in protected} == before
    assert main(["predict", str(run_dir), "<s>", "1"]) == 0  # the run is whole
    assert main([command, str(run_dir)]) == 0 and main([command, str(run_dir)]) == 0  # its own file: rewritten
    assert (run_dir / default).stat().st_size > 0


def test_the_api_refuses_the_same_overwrites_and_changed_weights(run_dir, tmp_path):
    run = tp.load(run_dir)
    program = (run_dir / "program.py").read_bytes()
    with pytest.raises(ValueError, match="was not written by this command"):
        run.report(run_dir / "program.py")
    with pytest.raises(ValueError, match="was not written by this command"):
        run.write_circuit(run.circuit(), run_dir / "model.safetensors")
    assert (run_dir / "program.py").read_bytes() == program
    weights = load_file(str(run_dir / "model.safetensors"))
    weights["classifier_bias"] = weights["classifier_bias"] + 1.0
    runio.save_tensors(run_dir / "model.safetensors", weights)
    with pytest.raises(runio.RunError, match="describes another model"):
        tp.load(run_dir)  # predict, trace and report would otherwise run on unverified weights
    (run_dir / "verification.json").unlink()
    with pytest.raises(runio.RunError, match="has no verification record"):
        tp.load(run_dir)


def test_an_interrupted_prune_leaves_nothing_and_can_run_again(run_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "pruned"
    args = ["prune", str(run_dir), "--out", str(out), "--finetune-epochs", "0", "--quiet"]

    def interrupted(staged: Path, *rest):
        assert (staged / "model.safetensors").is_file() and not out.exists()  # built beside, not in place
        raise KeyboardInterrupt

    real = prune_module.runio.write_json
    monkeypatch.setattr(prune_module.runio, "write_json",
                        lambda path, data: interrupted(path.parent) if path.name == "results.json" else real(path, data))
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "interrupted; nothing was written; run the same command again" in err and "--resume" not in err
    assert not out.exists() and not prune_module.staging_dir(out).exists()
    monkeypatch.undo()
    assert main(args) == 0
    assert (out / "program.py").is_file() and (out / "verification.json").is_file()
    assert not prune_module.staging_dir(out).exists()
    assert main(["prune", str(run_dir), "--out", str(run_dir / "sub"), "--quiet"]) == 2
    assert "lies inside the run being pruned" in one_line_error(capsys) and not (run_dir / "sub").exists()
